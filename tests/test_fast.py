"""The fast engine (hoisted GEMMs, fused Numba kernels) against the readable reference."""
import numpy as np
import pytest

from conftest import CELL_VARIANTS, VARIANT_IDS, ENGINES, every_engine_case, trained_on_threads
from scratchrnn.cells import CELLS, step_shapes
from scratchrnn.data import seq_data_iter_random, seq_data_iter_sequential
from scratchrnn.engines import fast as fast_engine
from scratchrnn.engines import mkl
from scratchrnn.errors import ConfigError
from scratchrnn.gradcheck import relative_error
from scratchrnn.model import RNNLM
from scratchrnn.train import detach

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def assert_same_step(ref, fast, X, Y, state, tol):
    loss_r, state_r, d0_r = ref.loss_and_grad(X, Y, state)
    loss_f, state_f, d0_f = fast.loss_and_grad(X, Y, state)
    assert abs(float(loss_r) - float(loss_f)) <= tol * abs(float(loss_r))
    for name in ref.grads:
        assert relative_error(ref.grads[name], fast.grads[name]) <= tol, name
    for a, b in zip(d0_r, d0_f):
        for x, y in zip(a, b):
            assert relative_error(x, y) <= tol
    for a, b in zip(state_r, state_f):
        for x, y in zip(a, b):
            assert relative_error(x, y) <= tol
    return state_r


# The recurrent GEMMs' layouts the engine may take on the CPU (fast.recurrent_layout): (forward, backward).
LAYOUTS = {"direct": (False, False), "transposed-forward": (True, False), "transposed-backward": (False, True),
           "transposed": (True, True)}
# The CPU BLAS of the engine's GEMMs (SCRATCHRNN_BLAS, engines/mkl.py): MKL's tests skipped where it is not installed.
BLASES = ["numpy", pytest.param("mkl", marks=pytest.mark.skipif(mkl.load()[0] is None, reason="MKL not installed"))]


@pytest.mark.parametrize("blas", BLASES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@every_engine_case
def test_fast_engine_equals_reference(cell, nonlinearity, num_layers, random_iter, dtype, layout, blas, rng,
                                      monkeypatch):
    """layout: H_{t-1} W_hh or (W_hh^T H_{t-1}^T)^T forward, dA_t W_hh^T or (W_hh dA_t^T)^T backward, which the
    engine chooses by width, the BLAS, its kernels and its threads (fast.recurrent_layout): here forced each way,
    whatever those are, with NumPy's matmul and with MKL's."""
    monkeypatch.setenv(mkl.VARIABLE, blas)
    V, H, B, T = 13, 16, 5, 7
    ref = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="reference", seed=2)
    fast = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="fast", seed=2)
    assert fast.engine.mkl is (blas == "mkl")
    fast.engine.layout_rule = lambda W_hh, kernels, threads: LAYOUTS[layout]
    np.testing.assert_array_equal(ref.flat_params, fast.flat_params)
    corpus = rng.integers(0, V, size=B * T * 5)
    iterate = seq_data_iter_random if random_iter else seq_data_iter_sequential
    state = None
    for X, Y in list(iterate(corpus, B, T, np.random.default_rng(0)))[:3]:
        if state is None or random_iter:
            state = ref.begin_state(B)
        X_t, Y_t = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        state = detach(assert_same_step(ref, fast, X_t, Y_t, state, TOLERANCE[dtype]))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_hot_rows_gathered_at_each_step_or_all_at_once_give_the_same_step(cell, rng):
    """The CPU gathers layer 0's rows of W_xh at each step and scatters dAx back into dW_xh at each step (fast.py), a
    GPU does both all at once for the chunk: the same forward, bit for bit (the same numbers in the same sums), and the
    same gradients up to the order of dW_xh's sums (float64). A GRU's layer 0 then needs one step's dAx, not T."""
    V, H, B, T = 11, 8, 4, 6
    X, Y = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    results = []
    for per_step in (True, False):
        m = RNNLM(V, H, 2, cell, engine="fast", seed=3, dtype="float64")
        m.engine.gather_per_step = per_step
        loss, state, _ = m.loss_and_grad(X, Y, m.begin_state(B))
        layers = m.engine.workspace(T, B).layers
        assert layers[0].per_step is per_step
        assert len(layers[0].dAx) == (1 if per_step and cell == "gru" else T) and len(layers[1].dAx) == T
        results.append((loss, [s.copy() for layer in state for s in layer], m.flat_grads.copy()))
    (loss_a, state_a, grads_a), (loss_b, state_b, grads_b) = results
    assert loss_a == loss_b
    assert relative_error(grads_a, grads_b) <= 1e-13
    for a, b in zip(state_a, state_b):
        np.testing.assert_array_equal(a, b)


def test_bias_gradients_the_engine_copies_are_equal_in_the_step_function(rng):
    """cell.SHARED_BLOCKS, which the fast engine reads to copy db_hh's first blocks from db_xh: after the GRU's
    step_backward (the reference), dAh's first SHARED_BLOCKS blocks are dAx's and the next one is not."""
    gru, B, nh = CELLS["gru"], 3, 5
    shapes = step_shapes(gru, B, nh)
    names = fast_engine.parameter_names(gru.step_backward)
    args = {name: rng.uniform(0.1, 0.9, shapes[name]) for name in names}
    gru.step_backward(**args)
    shared = gru.SHARED_BLOCKS * nh
    np.testing.assert_array_equal(args["dAh"][:, :shared], args["dAx"][:, :shared])
    assert not np.allclose(args["dAh"][:, shared:shared + nh], args["dAx"][:, shared:shared + nh])


@pytest.mark.parametrize("cell, nh, dtype, transposed", [
    ("lstm", 256, "float32", True), ("gru", 256, "float32", False), ("rnn", 512, "float32", True),
    ("rnn", 256, "float32", False), ("gru", 512, "float32", True), ("lstm", 128, "float64", True)])
@pytest.mark.parametrize("kernels", ["Haswell", "Zen", None])
def test_with_avx2_kernels_the_forward_alone_is_transposed_where_a_row_of_W_hh_spans_a_multiple_of_2_kib(
        cell, nh, dtype, transposed, kernels):
    """fast.recurrent_layout, as measured (README) with OpenBLAS's AVX2 kernels (or kernels it does not know): the
    LSTM's 1024 gate columns and the tanh RNN's 512 in float32 (4 and 2 KiB a row) take the transposed forward,
    the GRU's 768 (3 KiB) and a 256-wide RNN (1 KiB) do not; the backward stays direct."""
    W_hh = np.empty((nh, CELLS[cell].GATES * nh), dtype)
    assert fast_engine.recurrent_layout(W_hh, kernels) == (transposed, False)
    assert fast_engine.recurrent_layout(W_hh, kernels, threads=1) == (transposed, False)


@pytest.mark.parametrize("kernels", ["SkylakeX", "Cooperlake", "SapphireRapids"])
@pytest.mark.parametrize("cell, nh", [("lstm", 256), ("gru", 256), ("rnn", 512), ("gru", 128), ("rnn", 100)])
def test_with_avx512_kernels_both_recurrent_gemms_are_transposed_at_every_width(cell, nh, kernels):
    """fast.recurrent_layout, as measured (README) with OpenBLAS's AVX-512 kernels: the product with B columns is
    the fast one at every width, forward and backward."""
    assert fast_engine.recurrent_layout(np.empty((nh, CELLS[cell].GATES * nh), np.float32), kernels) == (True, True)


@pytest.mark.parametrize("kernels", ["Haswell", "Zen", "SkylakeX", None])
@pytest.mark.parametrize("threads", [2, 3, 16])
@pytest.mark.parametrize("cell, nh", [("lstm", 256), ("gru", 256), ("rnn", 512), ("rnn", 256), ("gru", 100)])
def test_with_more_than_one_blas_thread_both_recurrent_gemms_are_transposed(cell, nh, threads, kernels):
    """fast.recurrent_layout, as measured (README): with more than one thread OpenBLAS splits the product with B
    rows into two of B/2 rows, the transposed one over its G*nh rows, so both are transposed, whatever the kernels."""
    W_hh = np.empty((nh, CELLS[cell].GATES * nh), np.float32)
    assert fast_engine.recurrent_layout(W_hh, kernels, threads) == (True, True)


@pytest.mark.parametrize("threads", [1, 2, 16])
@pytest.mark.parametrize("cell, nh, dtype", [("lstm", 256, "float32"), ("gru", 256, "float32"), ("rnn", 512, "float32"),
                                             ("lstm", 128, "float64"), ("gru", 100, "float32")])
def test_with_mkl_both_recurrent_gemms_are_direct_at_every_width_and_thread_count(cell, nh, dtype, threads):
    """fast.recurrent_layout, as measured (README, round eight) with MKL: its GEMMs read W_hh and W_hh^T packed once
    per chunk, faster than any transposed form."""
    W_hh = np.empty((nh, CELLS[cell].GATES * nh), dtype)
    assert fast_engine.recurrent_layout(W_hh, fast_engine.MKL_KERNELS, threads) == (False, False)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_engine_asks_numpys_blas_for_its_kernels_and_threads(cell, monkeypatch):
    """With NumPy's BLAS, the engine's layouts are recurrent_layout's for the kernels backend.numpy_blas_kernels
    reports and the threads backend.numpy_blas_threads reports, asked again at each training chunk."""
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    monkeypatch.setattr(fast_engine, "numpy_blas_threads", lambda: 1)
    for kernels, expected in (("SkylakeX", [True, True]), ("Haswell", [cell == "lstm"] * 2)):
        monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: kernels)
        m = RNNLM(11, 256, 2, cell, engine="fast")
        assert m.engine.transposed_forward == expected
        assert m.engine.transposed_backward == [kernels == "SkylakeX"] * 2
    X = np.zeros((3, 2), np.int64)
    monkeypatch.setattr(fast_engine, "numpy_blas_threads", lambda: 2)
    m.loss_and_grad(X, X, m.begin_state(2))
    assert m.engine.transposed_forward == m.engine.transposed_backward == [True, True]
    monkeypatch.setattr(fast_engine, "numpy_blas_threads", lambda: 1)
    m.loss_and_grad(X, X, m.begin_state(2))
    assert m.engine.transposed_forward == [cell == "lstm"] * 2 and m.engine.transposed_backward == [False, False]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_engines_say_whether_their_sums_follow_the_blas_threads(cell, monkeypatch):
    """threads_change_sums, which tells a resume on other BLAS threads than its run's to say that its bits will differ
    (cli.note_other_sums): with OpenBLAS, whose threads split a product over its result's rows and columns, the fast
    engine's sums follow the threads only where the recurrent layouts do (AVX2 kernels: one thread against more); with
    MKL under NumPy, on any other count; never on a GPU (no layout rule). The reference engine's, only with MKL under
    NumPy."""
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    m, ref = RNNLM(11, 64, 2, cell, engine="fast"), RNNLM(11, 64, 2, cell, engine="reference")
    monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: "Haswell")
    assert m.engine.threads_change_sums(1, 2, 32) and m.engine.threads_change_sums(2, 1, 32)
    assert not m.engine.threads_change_sums(2, 3, 32) and not m.engine.threads_change_sums(1, 1, 32)
    monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: "SkylakeX")
    assert not m.engine.threads_change_sums(1, 2, 32) and not ref.engine.threads_change_sums(1, 2, 32)
    from scratchrnn.engines import reference
    monkeypatch.setattr(fast_engine, "numpy_blas_threads_change_sums", lambda: True)
    monkeypatch.setattr(reference, "numpy_blas_threads_change_sums", lambda: True)
    assert m.engine.threads_change_sums(1, 2, 32) and ref.engine.threads_change_sums(1, 2, 32)
    assert not m.engine.threads_change_sums(2, 2, 32) and not ref.engine.threads_change_sums(2, 2, 32)
    m.engine.layout_rule = None                                     # as on a GPU
    assert not m.engine.threads_change_sums(1, 2, 32)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_where_the_engine_says_its_sums_do_not_follow_the_threads_they_do_not(cell, monkeypatch):
    """The claim threads_change_sums rests on, with NumPy's OpenBLAS: its threads split a product over its result's
    rows and columns, each sum whole on one, so training on one thread and on two, with the same recurrent layouts,
    ends with the same bits (float32, two layers, four chunks; each GEMM large enough for OpenBLAS to use its
    threads: over 4 x 65536 multiply-adds)."""
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    from scratchrnn.backend import numpy_blas
    if (numpy_blas() or {}).get("library") != "OpenBLAS":
        pytest.skip("NumPy's BLAS is not OpenBLAS")
    monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: "SkylakeX")      # both layouts transposed on any
    one, two = (RNNLM(11, 128, 2, cell, engine="fast", seed=3) for _ in range(2))
    assert not one.engine.threads_change_sums(1, 2, 32)
    assert np.array_equal(trained_on_threads(one, 1, B=32), trained_on_threads(two, 2, B=32))
    assert not np.array_equal(one.flat_params, RNNLM(11, 128, 2, cell, engine="fast", seed=3).flat_params)


def test_numpy_blas_threads_follows_threadpool_limits():
    """backend.numpy_blas_threads reads the thread count of NumPy's BLAS as threadpool_limits sets it."""
    from threadpoolctl import threadpool_limits
    from scratchrnn.backend import numpy_blas_controller, numpy_blas_threads
    if numpy_blas_controller() is None:
        pytest.skip("threadpoolctl finds no BLAS under NumPy")
    most = numpy_blas_threads()                    # OpenBLAS's own count: the cores it found, unless limited
    for threads in (1, 2):
        with threadpool_limits(threads):
            assert numpy_blas_threads() == min(threads, most)
    assert numpy_blas_threads() == most


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_a_gradient_reaching_the_final_state_continues_bptt(model_on, engine, cell, nonlinearity, num_layers, rng):
    """dstate, in every engine: chunk 2's gradient at its initial state, handed to chunk 1's backward as the
    gradient reaching chunk 1's final state, makes the two chunks' gradients add up to those of one backward
    through both (the mean loss over 2T steps is the mean of the two chunks' losses)."""
    V, H, B, T = 9, 6, 3, 4
    m = model_on(engine, V, H, num_layers, cell, nonlinearity=nonlinearity, dtype="float64", seed=3)
    X, Y = rng.integers(0, V, (2 * T, B)), rng.integers(0, V, (2 * T, B))
    start = [tuple(rng.standard_normal(s.shape) for s in layer) for layer in m.begin_state(B)]
    _, _, d_full = m.loss_and_grad(X, Y, start)
    g_full = m.flat_grads.copy()
    _, middle, _ = m.loss_and_grad(X[:T], Y[:T], start)
    _, _, d2 = m.loss_and_grad(X[T:], Y[T:], detach(middle))
    g2 = m.flat_grads.copy()
    m.loss_and_grad(X[:T], Y[:T], start)                                     # truncated: nothing from chunk 2
    g1_truncated = m.flat_grads.copy()
    _, _, d1 = m.loss_and_grad(X[:T], Y[:T], start, dstate=d2)
    g1 = m.flat_grads.copy()
    assert relative_error((g1 + g2) / 2, g_full) < 1e-10
    for a, b in zip(d1, d_full):
        for x, y in zip(a, b):
            assert relative_error(x / 2, y) < 1e-10
    assert relative_error((g1_truncated + g2) / 2, g_full) > 1e-3           # and truncation does cut it


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", ["direct", "transposed"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_without_the_initial_states_gradient_the_step_is_the_same(model_on, engine, layout, cell, nonlinearity,
                                                                    num_layers, rng):
    """state_grad=False (training: the state is detached, dL/d(initial state) is read by no one): the fast engines
    skip each layer's last backward product dA_1 W_hh^T, and every engine gives None in its place; the loss, the
    gradients and the final state are the same bits as with it, with and without a gradient reaching the final
    state, in either recurrent layout."""
    V, H, B, T = 9, 6, 3, 4
    m = model_on(engine, V, H, num_layers, cell, nonlinearity=nonlinearity, dtype="float64", seed=3)
    if engine != "reference":
        m.engine.layout_rule = lambda W_hh, kernels, threads: LAYOUTS[layout]
    X, Y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    start = [tuple(rng.standard_normal(s.shape) for s in layer) for layer in m.begin_state(B)]
    for dstate in (None, [tuple(rng.standard_normal(s.shape) for s in layer) for layer in start]):
        loss, final, d0 = m.loss_and_grad(X, Y, start, dstate=dstate)
        grads = m.flat_grads.copy()
        assert d0 is not None and all(x is not None for x in d0)
        loss_, final_, d0_ = m.loss_and_grad(X, Y, start, dstate=dstate, state_grad=False)
        assert d0_ is None and float(loss_) == float(loss)
        np.testing.assert_array_equal(m.flat_grads, grads)
        for a, b in zip(final, final_):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_forward_alone_gives_the_logits_of_the_training_forward(model_on, engine, rng):
    """Validation and generation run through the model's engine (forward only): the same logits and final
    state as the reference's forward, for chunks of several shapes in turn (the fast engine keeps a
    workspace per shape)."""
    m = model_on(engine, 11, 8, 2, "gru", dtype="float64", seed=1)
    ref = RNNLM(11, 8, 2, "gru", dtype="float64", seed=1, engine="reference")
    for T, B in ((5, 3), (1, 1), (5, 3), (7, 2)):
        X = rng.integers(0, 11, (T, B))
        state = [tuple(rng.standard_normal(s.shape) for s in layer) for layer in m.begin_state(B)]
        logits, final = m.forward(X, state)
        logits_ref, final_ref = ref.forward(X, state)
        assert logits.shape == (T * B, 11) and relative_error(logits, logits_ref) < 1e-12
        assert relative_error(final[1][0], final_ref[1][0]) < 1e-12


@pytest.mark.parametrize("gradient", ["random", "zero", "norm equal to theta", "one NaN"])
@pytest.mark.parametrize("theta", [1e-3, 1.0, 1e6, None])
def test_the_clipping_twins_agree_on_every_input(model_on, gradient, theta, rng):
    """One rule (engines.clipping_threshold) in the three engines: the same norm, the same new weights."""
    results = []
    g = rng.standard_normal(RNNLM(9, 8, 2, "lstm").flat_grads.shape)
    if gradient == "zero":
        g[:] = 0
    elif gradient == "norm equal to theta":
        g *= (theta or 1.0) / np.linalg.norm(g)
    elif gradient == "one NaN":
        g[7] = np.nan
    for engine in ENGINES:
        m = model_on(engine, 9, 8, 2, "lstm", dtype="float64", seed=0)
        m.flat_grads[...] = g
        with np.errstate(invalid="ignore"):
            norm = float(m.clip_and_sgd(0.5, theta))
        results.append((norm, m.flat_params.copy()))
    for norm, params in results[1:]:
        np.testing.assert_allclose(norm, results[0][0], rtol=1e-12)
        np.testing.assert_allclose(params, results[0][1], rtol=1e-12, atol=1e-14)
    if gradient in ("zero", "norm equal to theta") or theta is None:   # not above theta: an unscaled step
        fresh = RNNLM(9, 8, 2, "lstm", dtype="float64", seed=0).flat_params
        np.testing.assert_allclose(results[0][1], fresh - 0.5 * g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("theta", [0, -1.0, float("nan"), float("inf"), "1"])
def test_a_threshold_that_makes_no_sense_is_refused_by_every_engine(model_on, engine, theta):
    m = model_on(engine, 9, 8, 1, "rnn")
    before = m.flat_params.copy()
    with pytest.raises(ConfigError, match="clipping threshold theta must be a positive finite number"):
        m.clip_and_sgd(0.5, theta)
    np.testing.assert_array_equal(m.flat_params, before)


def test_workspace_is_reused():
    """A workspace per chunk shape, reused: the training shape survives validation and generation calls."""
    m = RNNLM(11, 8, 2, "lstm", engine="fast")
    X = np.zeros((6, 3), np.int64)
    m.loss_and_grad(X, X, m.begin_state(3))
    ws = m.engine.workspace(6, 3)
    m.forward(np.zeros((1, 1), np.int64), m.begin_state(1))
    m.forward(np.zeros((6, 2), np.int64), m.begin_state(2))
    m.loss_and_grad(X, X, m.begin_state(3))
    assert m.engine.workspace(6, 3) is ws and len(m.engine.workspaces) == 3


def test_a_cell_the_engines_never_heard_of_runs_on_every_engine(monkeypatch, model_on, rng):
    """Adding a cell touches no engine: a copy of the GRU's module under a new name, registered in CELLS and
    nowhere else, runs on the reference, the fast engine (Numba) and our CUDA kernels built for the host,
    each finding every fact (state, saved arrays, carried gradients, kernels) on the module."""
    import types
    from scratchrnn import cells
    from scratchrnn.cells import gru
    clone = types.ModuleType("scratchrnn.cells.gru_copy")
    clone.__dict__.update({k: v for k, v in vars(gru).items() if not k.startswith("__")})
    monkeypatch.setitem(cells.CELLS, "gru_copy", clone)
    X, Y = rng.integers(0, 9, (5, 3)), rng.integers(0, 9, (5, 3))
    for engine in ENGINES:
        new, known = (model_on(engine, 9, 6, 2, cell, dtype="float64", seed=1) for cell in ("gru_copy", "gru"))
        assert new.cell is clone
        for m in (new, known):
            m.loss_and_grad(X, Y, m.begin_state(3))
        np.testing.assert_allclose(new.flat_grads, known.flat_grads, rtol=1e-12, atol=1e-15)


def test_numba_caches_where_it_can_in_a_read_only_install(tmp_path, monkeypatch):
    """Installed read-only and run by an account whose home cannot be written (a service, a container's user),
    `import scratchrnn` raised Numba's "cannot cache function 'sigmoid': no locator available" (tried as nobody).
    The kernels then go to a private folder of the temporary one (engines/numba_cache.py); one that others may
    write is passed over for a fresh one of the process's own (a cached kernel is loaded as code)."""
    import os
    import stat
    import tempfile

    from numba.core import config

    from scratchrnn.engines import numba_cache
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert numba_cache.choose_cache_folder(numba_cache.__file__) is None       # here Numba has its own place
    monkeypatch.setattr(numba_cache, "writable", lambda folder: str(folder).startswith(str(tmp_path)))
    chosen = numba_cache.choose_cache_folder(numba_cache.__file__)
    assert chosen == str(tmp_path / f"scratchrnn-numba-{os.getuid()}") == config.CACHE_DIR
    assert stat.S_IMODE(os.lstat(chosen).st_mode) == 0o700
    os.chmod(chosen, 0o777)                                            # another may write it: passed over
    config.CACHE_DIR = ""
    fresh = numba_cache.choose_cache_folder(numba_cache.__file__)
    assert fresh != chosen and fresh.startswith(str(tmp_path / "scratchrnn-numba-")) and config.CACHE_DIR == fresh
    config.CACHE_DIR = "/chosen/by/the/user"                          # NUMBA_CACHE_DIR: kept
    assert numba_cache.choose_cache_folder(numba_cache.__file__) is None and config.CACHE_DIR == "/chosen/by/the/user"
