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
    """One setting for both BLASes: at each training chunk the engine sets MKL to NumPy's BLAS's threads, and takes
    recurrent_layout's layouts for MKL on them (the LSTM's 128 x 512 float32 W_hh: rows of 2 KiB)."""
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
        assert m.engine.transposed_forward == [n > 1] * 2 and m.engine.transposed_backward == [False] * 2


def test_the_engine_without_mkl_uses_numpys_matmul(monkeypatch):
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    m = RNNLM(11, 16, 1, "lstm", engine="fast")
    assert not m.engine.mkl and m.engine.matmul is np.matmul and "MKL" not in m.engine_name
