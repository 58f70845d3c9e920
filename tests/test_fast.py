"""The fast engine (hoisted GEMMs, fused Numba kernels) against the readable reference."""
import numpy as np
import pytest

from scratchrnn.data import seq_data_iter_random, seq_data_iter_sequential
from scratchrnn.gradcheck import relative_error
from scratchrnn.model import RNNLM
from scratchrnn.train import detach

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell, nonlinearity", CELLS, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
def test_fast_engine_equals_reference(cell, nonlinearity, num_layers, random_iter, dtype, rng):
    V, H, B, T = 13, 16, 5, 7
    ref = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="reference", seed=2)
    fast = RNNLM(V, H, num_layers, cell, nonlinearity=nonlinearity, dtype=dtype, engine="fast", seed=2)
    np.testing.assert_array_equal(ref.flat_params, fast.flat_params)
    corpus = rng.integers(0, V, size=B * T * 5)
    iterate = seq_data_iter_random if random_iter else seq_data_iter_sequential
    state = None
    for X, Y in list(iterate(corpus, B, T, np.random.default_rng(0)))[:3]:
        if state is None or random_iter:
            state = ref.begin_state(B)
        X_t, Y_t = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        state = detach(assert_same_step(ref, fast, X_t, Y_t, state, TOLERANCE[dtype]))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_fast_update_equals_reference(cell, rng):
    """Clipping and SGD over the flat buffers: same norm, same new weights."""
    ref = RNNLM(9, 8, 2, cell, dtype="float64", engine="reference")
    fast = RNNLM(9, 8, 2, cell, dtype="float64", engine="fast")
    for theta in (1e-3, 1e6, None):
        g = rng.standard_normal(ref.flat_grads.shape)
        ref.flat_grads[...] = g
        fast.flat_grads[...] = g
        assert abs(float(ref.clip_and_sgd(0.5, theta)) - float(fast.clip_and_sgd(0.5, theta))) < 1e-10
        np.testing.assert_allclose(ref.flat_params, fast.flat_params, rtol=1e-12, atol=1e-14)


def test_workspace_is_reused():
    m = RNNLM(11, 8, 2, "lstm", engine="fast")
    X = np.zeros((6, 3), np.int64)
    m.loss_and_grad(X, X, m.begin_state(3))
    ws = m.engine.ws
    m.loss_and_grad(X, X, m.begin_state(3))
    assert m.engine.ws is ws
