r"""The plain recurrent cell (d2l.ai "Recurrent Neural Networks from Scratch").

Forward, for t = 1..T (phi = tanh, or ReLU as an option):

    A_t = X_t W_xh + b_xh + H_{t-1} W_hh + b_hh          (B, H)
    H_t = phi(A_t)                                        (B, H)

Backward (BPTT). The loss L reaches H_t twice: from above (the output layer or the next layer, dHs[t])
and from the future (through H_{t+1}). Walking t = T..1:

    dH_t   = dHs[t] + dA_{t+1} W_hh^T                     (the second term is 0 at t = T: truncation)
    dA_t   = dH_t * phi'(A_t)        phi' = 1 - H_t^2 for tanh,  [A_t > 0] for ReLU
    dW_hh += H_{t-1}^T dA_t          dW_xh += X_t^T dA_t          db_xh = db_hh += sum_b dA_t
    dX_t   = dA_t W_xh^T             (to the layer below; nothing for one-hot token input)

dA_t W_hh^T is the factor that is multiplied in once per step: its norm shrinking or growing is the
vanishing or exploding gradient.
"""
from ..backend import xp_of
from .common import project_input, project_input_backward

GATES = 1


def zero_state(batch_size, num_hiddens, xp, dtype):
    return (xp.zeros((batch_size, num_hiddens), dtype=dtype),)


def forward(p, X, state, nonlinearity="tanh"):
    """X: (T, B) ids or (T, B, in); state: (H,) with H (B, H). -> Hs (T, B, H), (H_T,), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    (H,) = state
    xp = xp_of(H)
    Hs, H_prevs = [], []
    for t in range(X.shape[0]):
        H_prevs.append(H)
        A = project_input(X[t], W_xh) + b_xh + H @ W_hh + b_hh     # (B, H)
        if nonlinearity == "tanh":
            H = xp.tanh(A)
        else:
            H = A * (A > 0)                                          # ReLU
        Hs.append(H)
    Hs = xp.stack(Hs)                                                # (T, B, H)
    cache = (X, H_prevs, Hs, nonlinearity)
    return Hs, (H,), cache


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, H) from above; dstate: gradient reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, in) or None, (dH_0,), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, H_prevs, Hs, nonlinearity = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dXs = []
    dH_next = xp.zeros_like(dHs[0]) if dstate is None else dstate[0]   # (B, H) from step t+1
    for t in reversed(range(X.shape[0])):
        dH = dHs[t] + dH_next                                         # (B, H)
        if trace is not None:
            trace.append(float(xp.linalg.norm(dH)))
        if nonlinearity == "tanh":
            dA = dH * (1 - Hs[t] ** 2)
        else:
            dA = dH * (Hs[t] > 0)
        grads["W_hh"] += H_prevs[t].T @ dA
        grads["b_xh"] += dA.sum(axis=0)
        grads["b_hh"] += dA.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dA, grads["W_xh"]))
        dH_next = dA @ W_hh.T                                         # to H_{t-1}
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_next,), grads

