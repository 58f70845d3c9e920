"""Finite-difference checks of every hand-written backward, in float64.

For a parameter element w, the central difference

    dL/dw ~ (L(w + eps) - L(w - eps)) / (2 eps)

has error O(eps^2) from the Taylor series plus O(machine eps / eps) from rounding; with float64
and eps = 1e-4 both are around 1e-11 for a loss of order 1, far below the 1e-6 we require. The loss L is always the
readable reference forward (cells/ + output.py), so a fast engine's backward is checked against
the mathematics, not against itself.

Each parameter's error is the relative distance of the two gradient vectors,

    rel = ||g_analytic - g_numeric|| / max(||g_analytic||, ||g_numeric||)    (0 when both are 0).
"""
from collections import OrderedDict

import numpy as np

from . import output
from .backend import to_numpy
from .data import seq_data_iter_random, seq_data_iter_sequential
from .engines.reference import ReferenceEngine
from .model import RNNLM
from .train import detach


def chunk_loss(model, X, Y, state, masks=None):
    """The loss of one chunk by the reference forward (whatever the model's engine), as a Python float;
    masks: the dropout masks to hold fixed, or None."""
    logits, _, _ = ReferenceEngine(model).forward_with_cache(X, state, masks)
    loss, _ = output.softmax_cross_entropy(logits, Y.reshape(-1))
    return float(loss)


def relative_error(a, b):
    a, b = (np.asarray(to_numpy(x), dtype=np.float64).ravel() for x in (a, b))
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numerical_gradient(f, x, indices, eps=1e-4):
    """Central differences of the scalar function f() with respect to x.flat[indices] (x is changed
    in place and restored)."""
    flat = x.reshape(-1)
    g = np.zeros(len(indices))
    indices = [int(i) for i in indices]
    for j, i in enumerate(indices):
        old = flat[i].item()            # a copy (CuPy's flat[i] would be a view that the next line changes)
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        g[j] = (f_plus - f_minus) / (2 * eps)
    return g


def pick_indices(size, max_elements, rng):
    """Every element, or a random subset of `max_elements` of a big array."""
    if size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, max_elements, replace=False))


def check_chunk(model, X, Y, state, max_elements=400, eps=1e-4, rng=None):
    """Compare the model's backward with finite differences, for every parameter and for every
    array of the initial state. With dropout on, one set of masks is drawn and held fixed for both.
    Returns an ordered dict name -> relative error."""
    rng = rng or np.random.default_rng(0)
    masks = model.dropout_masks(*X.shape) if model.dropout > 0 else None
    _, _, dstate0 = model.loss_and_grad(X, Y, state, masks=masks)
    errors = OrderedDict()
    for name, p in model.params.items():
        idx = pick_indices(p.size, max_elements, rng)
        numeric = numerical_gradient(lambda: chunk_loss(model, X, Y, state, masks), p, idx, eps)
        errors[name] = relative_error(to_numpy(model.grads[name]).reshape(-1)[idx], numeric)
    for k, layer_state in enumerate(state):
        for j, s in enumerate(layer_state):
            idx = pick_indices(s.size, max_elements, rng)
            numeric = numerical_gradient(lambda: chunk_loss(model, X, Y, state, masks), s, idx, eps)
            errors[f"l{k}.{'HC'[j]}_0"] = relative_error(to_numpy(dstate0[k][j]).reshape(-1)[idx], numeric)
    return errors


def check_model(cell="lstm", num_layers=2, nonlinearity="tanh", random_iter=False, engine="reference",
                vocab_size=7, num_hiddens=5, batch_size=3, num_steps=4, seed=0, max_elements=400, device="cpu",
                prepare=None, embedding_dim=None, dropout=0.0):
    """Gradient check over two consecutive chunks of a small random corpus, float64.

    Sequential partitioning: chunk 2 starts from chunk 1's detached final state.
    Random sampling: each chunk starts from a fresh zero state.
    Returns {"chunk 1": errors, "chunk 2": errors}.
    """
    rng = np.random.default_rng(seed)
    model = RNNLM(vocab_size, num_hiddens, num_layers, cell, nonlinearity=nonlinearity,
                  dtype="float64", seed=seed, engine=engine, device=device, embedding_dim=embedding_dim,
                  dropout=dropout)
    if prepare is not None:                       # e.g. fast.use_host_cuda_kernels
        prepare(model)
    corpus = rng.integers(0, vocab_size, size=batch_size * num_steps * 4 + num_steps + 1)
    iterate = seq_data_iter_random if random_iter else seq_data_iter_sequential
    chunks = list(iterate(corpus, batch_size, num_steps, np.random.default_rng(seed)))[:2]
    results, state = OrderedDict(), None
    for i, (X, Y) in enumerate(chunks):
        X_t, Y_t = (model.xp.asarray(np.ascontiguousarray(Z.T)) for Z in (X, Y))   # (T, B)
        if state is None or random_iter:
            state = model.begin_state(batch_size)
        results[f"chunk {i + 1}"] = check_chunk(model, X_t, Y_t, state, max_elements, rng=rng)
        _, final, _ = model.loss_and_grad(X_t, Y_t, state)
        state = detach(final)
    return results
