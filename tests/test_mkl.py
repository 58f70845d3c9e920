"""The fast engine's GEMMs through MKL (engines/mkl.py): the choice SCRATCHRNN_BLAS makes, mkl.matmul against
np.matmul at every layout the engine passes, the threads it runs, and the engine on it against the reference.
Where MKL is not installed (pip install 'scratchrnn[mkl]') the tests that run it are skipped; the choice is tested
everywhere."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from scratchrnn.engines import mkl
from scratchrnn.errors import ConfigError
from scratchrnn.model import RNNLM

needs_mkl = pytest.mark.skipif(mkl.load()[0] is None, reason="MKL is not installed (pip install 'scratchrnn[mkl]')")


def operand(rng, shape, dtype, form):
    """A (rows, columns) operand as the engine passes them: contiguous, a transposed view of a contiguous array, a
    block of a wider array (leading dimension larger than its row), a strided slice (not one CBLAS takes)."""
    rows, columns = shape
    if form == "contiguous":
        return rng.standard_normal(shape).astype(dtype)
    if form == "transposed":
        return rng.standard_normal((columns, rows)).astype(dtype).T
    if form == "block":
        return rng.standard_normal((rows + 2, columns + 3)).astype(dtype)[1:rows + 1, 2:columns + 2]
    return rng.standard_normal((rows, 2 * columns)).astype(dtype)[:, ::2]


FORMS = ["contiguous", "transposed", "block", "strided"]


@needs_mkl
@pytest.mark.parametrize("b_form", FORMS)
@pytest.mark.parametrize("a_form", FORMS)
@pytest.mark.parametrize("M, K, N", [(32, 256, 1024), (7, 5, 3), (1, 4, 1), (3, 1, 2), (0, 3, 2), (2, 0, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mkl_matmul_is_numpys_matmul(dtype, M, K, N, a_form, b_form, rng):
    """out = A B as np.matmul computes it, for every operand layout, one-row and one-column shapes and empty ones
    (K = 0: all zeros), to float32's and float64's rounding."""
    A, B = operand(rng, (M, K), dtype, a_form), operand(rng, (K, N), dtype, b_form)
    out = np.full((M, N), np.nan, dtype)
    assert mkl.matmul(A, B, out) is out
    expected = A.astype(np.float64) @ B.astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-4 if dtype == "float32" else 1e-12)


@needs_mkl
def test_what_cblas_cannot_take_falls_back_to_numpy_and_mismatched_shapes_fail_as_numpy_does(rng):
    """A read-only operand, a non-contiguous out, mixed dtypes, integers: np.matmul's answer; shapes that do not
    match: np.matmul's ValueError."""
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    A.flags.writeable = False
    out = np.empty((4, 5))
    np.testing.assert_allclose(mkl.matmul(A, B, out), A @ B, rtol=1e-12)
    wide = np.empty((4, 10))
    mkl.matmul(A, B, wide[:, ::2])
    np.testing.assert_allclose(wide[:, ::2], A @ B, rtol=1e-12)
    out32 = np.empty((4, 5), np.float32)
    np.testing.assert_allclose(mkl.matmul(A.astype(np.float32), B, out32), A @ B, rtol=1e-5)
    ints = np.empty((4, 5), np.int64)
    np.testing.assert_array_equal(mkl.matmul(np.ones((4, 3), np.int64), np.ones((3, 5), np.int64), ints), 3)
    with pytest.raises(ValueError):
        mkl.matmul(A, rng.standard_normal((4, 5)), out)
    with pytest.raises(ValueError):
        mkl.matmul(A, B, np.empty((5, 5)))


@needs_mkl
@pytest.mark.parametrize("source", ["contiguous", "transposed", "block"])
@pytest.mark.parametrize("M, K, N", [(32, 256, 1024), (32, 1024, 256), (7, 5, 3), (1, 4, 1), (3, 1, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_packed_operand_gives_the_product_of_the_array_it_was_packed_from(dtype, M, K, N, source, rng):
    """mkl.PackedB: B packed once (from a contiguous array, a transposed view: W_hh^T from W_hh, or a block), then
    A B for any A of M rows, the same as np.matmul's; packed again after B changes, the new product."""
    B = operand(rng, (K, N), dtype, source)
    packed = mkl.PackedB(M, K, N, dtype).pack(B)
    out = np.empty((M, N), dtype)
    for _ in range(2):
        A = operand(rng, (M, K), dtype, "contiguous")
        assert mkl.matmul(A, packed, out) is out
        np.testing.assert_allclose(out, A.astype(np.float64) @ B.astype(np.float64),
                                   rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-4 if dtype == "float32" else 1e-12)
        B *= -2.0
        packed.pack(B)


@needs_mkl
def test_a_packed_operand_refuses_what_does_not_fit_it_in_one_line(rng):
    """An A of other rows or columns, an out of another shape, another dtype, a strided source: a ValueError."""
    packed = mkl.PackedB(4, 3, 5, "float32").pack(rng.standard_normal((3, 5)).astype(np.float32))
    A, out = np.ones((4, 3), np.float32), np.empty((4, 5), np.float32)
    for bad_A, bad_out in [(np.ones((5, 3), np.float32), out), (np.ones((4, 2), np.float32), out),
                           (A, np.empty((4, 6), np.float32)), (A.astype(np.float64), out.astype(np.float64)),
                           (A, np.empty((4, 10), np.float32)[:, ::2])]:
        with pytest.raises(ValueError, match="no such product"):
            mkl.matmul(bad_A, packed, bad_out)
    for bad_B in (np.ones((3, 6), np.float32), np.ones((3, 5)), np.ones((3, 10), np.float32)[:, ::2]):
        with pytest.raises(ValueError, match="cannot pack"):
            packed.pack(bad_B)


@needs_mkl
def test_a_gemms_sums_do_not_depend_on_where_its_arrays_lie(rng):
    """The same product, bit for bit, whatever the arrays' alignment (a resumed run allocates anew) and at 1 and 2
    threads each time (MKL_Set_Dynamic(0): never fewer threads than it is given)."""
    def placed(source, offset):                          # a copy starting `offset` float32s past a 64-byte boundary
        buffer = np.empty(source.size + 32, np.float32)
        start = (-buffer.ctypes.data // 4) % 16 + offset
        copy = buffer[start:start + source.size].reshape(source.shape)
        copy[...] = source
        return copy
    A, W = rng.standard_normal((32, 256)).astype(np.float32), rng.standard_normal((256, 1024)).astype(np.float32)
    for threads in (1, 2):
        with threadpool_limits(threads):
            mkl.sync_threads(threads)
            results = {mkl.matmul(placed(A, a), placed(W, w), placed(np.zeros((32, 1024), np.float32), c)).tobytes()
                       for a, w, c in [(0, 0, 0), (1, 3, 5), (4, 8, 12), (7, 2, 9)] for _ in range(2)}
            assert len(results) == 1


def test_scratchrnn_blas_chooses_the_fast_engines_blas(monkeypatch):
    """auto: MKL where it loads and the CPU is Intel's; mkl: MKL anywhere, one clear line where it is not installed;
    numpy: never; anything else: one clear line."""
    loaded, missing = (object(), None), (None, "libmkl_rt.so.3: cannot open shared object file")
    for setting, library, intel, expected in [
            ("auto", loaded, True, True), ("auto", loaded, False, False), ("auto", missing, True, False),
            ("", loaded, True, True), (None, loaded, True, True), ("MKL", loaded, False, True),
            ("numpy", loaded, True, False), ("numpy", missing, True, False)]:
        if setting is None:
            monkeypatch.delenv(mkl.VARIABLE, raising=False)
        else:
            monkeypatch.setenv(mkl.VARIABLE, setting)
        monkeypatch.setattr(mkl, "load", lambda library=library: library)
        monkeypatch.setattr(mkl, "intel_cpu", lambda intel=intel: intel)
        assert mkl.chosen() is expected, (setting, library, intel)
    monkeypatch.setattr(mkl, "load", lambda: missing)
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    with pytest.raises(ConfigError, match=r"SCRATCHRNN_BLAS=mkl, but MKL cannot be loaded \(libmkl_rt.so.3: .*\); "
                                          r"pip install 'scratchrnn\[mkl\]'"):
        mkl.chosen()
    monkeypatch.setenv(mkl.VARIABLE, "openblas")
    with pytest.raises(ConfigError, match=r"SCRATCHRNN_BLAS='openblas' is not one of auto, mkl, numpy") as e:
        RNNLM(11, 8, 1, "gru", engine="fast")
    assert "\n" not in str(e.value)


def test_a_bad_scratchrnn_blas_is_one_line_from_the_command(tmp_path):
    """The command line says so in one line and exits non-zero, and trains nothing."""
    import os
    import subprocess
    import sys
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--out", str(out), "--epochs", "1", "--hidden",
                        "16", "--max-tokens", "3000", "--device", "cpu"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, mkl.VARIABLE: "fastest"})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "SCRATCHRNN_BLAS='fastest' is not one of" in r.stderr
    assert not (out / "last.npz").exists()


@needs_mkl
@pytest.mark.parametrize("threads", [1, 2])
def test_mkl_runs_as_many_threads_as_numpys_blas(threads, monkeypatch):
    """One setting for both BLASes: at each training chunk the engine sets MKL to NumPy's BLAS's threads; its
    per-step GEMMs are direct and read W_hh and W_hh^T packed for B rows, at 1 thread and at 2."""
    from scratchrnn.backend import numpy_blas_threads
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    m = RNNLM(11, 128, 2, "lstm", engine="fast")
    assert m.engine.mkl and m.engine_name.endswith(" with MKL")
    X = np.zeros((3, 2), np.int64)
    with threadpool_limits(threads):
        mkl.sync_threads(7)
        m.loss_and_grad(X, X, m.begin_state(2))
        n = numpy_blas_threads()
        assert mkl.threads() == n and n <= threads
        assert m.engine.transposed_forward == m.engine.transposed_backward == [False] * 2
        for layer in m.engine.workspace(3, 2).layers:
            assert isinstance(layer.W_hh_step, mkl.PackedB) and isinstance(layer.W_hhT_step, mkl.PackedB)
            assert (layer.W_hh_step.M, layer.W_hh_step.shape, layer.W_hhT_step.shape) == (2, (128, 512), (512, 128))


@needs_mkl
def test_with_mkl_the_engines_sums_follow_the_threads(monkeypatch):
    """MKL's GEMMs end with other bits on another count of threads (a 2 x 64 LSTM, two epochs of 10,000 characters on
    one thread and on two: all 12 arrays differ, with OpenBLAS's AVX-512 kernels none; Intel Xeon family 6 model 207,
    2026-12-07): the fast engine with MKL says so for any other count (threads_change_sums, a resume's note)."""
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    m = RNNLM(11, 64, 2, "lstm", engine="fast")
    assert m.engine.mkl and m.engine.threads_change_sums(1, 2, 32) and m.engine.threads_change_sums(4, 2, 32)
    assert not m.engine.threads_change_sums(2, 2, 32)


@needs_mkl
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_packed_and_plain_mkl_gemms_train_to_the_same_numbers(cell, monkeypatch, rng):
    """The engine with W_hh packed (its way with MKL) and with the plain GEMMs: the same loss, gradients and state
    over three chunks of training, float64, to 1e-12, and after each update W_hh is packed anew (the second and third
    chunks would differ otherwise)."""
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    V, H, B, T = 13, 24, 4, 6
    models = [RNNLM(V, H, 2, cell, dtype="float64", engine="fast", seed=5) for _ in range(2)]
    models[1].engine.pack_recurrent = False
    states = [m.begin_state(B) for m in models]
    for _ in range(3):
        X, Y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
        results = []
        for i, m in enumerate(models):
            loss, states[i], _ = m.loss_and_grad(X, Y, [tuple(s.copy() for s in layer) for layer in states[i]])
            results.append((loss, m.flat_grads.copy()))
            m.clip_and_sgd(1.0, 0.5)
        (loss_a, g_a), (loss_b, g_b) = results
        assert abs(loss_a - loss_b) <= 1e-12 * abs(loss_a)
        np.testing.assert_allclose(g_a, g_b, rtol=1e-10, atol=1e-12)
    assert isinstance(models[0].engine.workspace(T, B).layers[0].W_hh_step, mkl.PackedB)
    assert not isinstance(models[1].engine.workspace(T, B).layers[0].W_hh_step, mkl.PackedB)


def test_the_engine_without_mkl_uses_numpys_matmul(monkeypatch):
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    m = RNNLM(11, 16, 1, "lstm", engine="fast")
    assert not m.engine.mkl and m.engine.matmul is np.matmul and "MKL" not in m.engine_name


@needs_mkl
def test_the_memory_check_counts_what_the_packed_weights_take(monkeypatch):
    """model.training_bytes: with MKL the fast engine's CPU training also holds each layer's W_hh and W_hh^T packed
    (mkl.packed_bytes, which the buffers of a training workspace take, byte for byte); without it, on the GPU or
    with the reference engine, nothing is packed."""
    from scratchrnn.model import training_bytes
    config = dict(cell="lstm", hidden=64, layers=2, dtype="float32", engine="fast")
    V, B, T = 20, 8, 5
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    plain = training_bytes(config, V, B, T, "cpu")
    monkeypatch.setenv(mkl.VARIABLE, "mkl")
    packed = training_bytes(config, V, B, T, "cpu") - plain
    m = RNNLM(V, 64, 2, "lstm", engine="fast")
    m.loss_and_grad(np.zeros((T, B), int), np.zeros((T, B), int), m.begin_state(B))
    layers = m.engine.workspace(T, B).layers
    assert packed == sum(p.storage.nbytes for layer in layers for p in (layer.W_hh_packed, layer.W_hhT_packed)) > 0
    assert training_bytes(config, V, B, T, "gpu") == training_bytes({**config, "engine": "reference"}, V, B, T) == plain


@needs_mkl
def test_sync_threads_holds_after_threadpool_limits_set_mkls_own_thread_count():
    """threadpool_limits sets MKL's threads for the calling thread (MKL_Set_Num_Threads_Local), which outranks the
    global setting: sync_threads must set the same one, or MKL goes on with the count threadpool_limits restored."""
    mkl.load_library()
    with threadpool_limits(2):
        with threadpool_limits(1):
            pass                                          # leaves MKL's own count for this thread at 2
        for n in (1, 2, 1):
            mkl.sync_threads(n)
            assert mkl.threads() == n
