r"""The plain recurrent cell (d2l.ai "Recurrent Neural Networks from Scratch").

Forward, for t = 1..T (phi = tanh, or ReLU as an option):

    A_t = X_t W_xh + b_xh + H_{t-1} W_hh + b_hh          (B, nh)
    H_t = phi(A_t)                                        (B, nh)

Backward (BPTT). The loss L reaches H_t twice: from above (the output layer or the next layer, dHs[t])
and from the future (through H_{t+1}). Walking t = T..1:

    dH_t   = dHs[t] + dH_rec,   dH_rec = dA_{t+1} W_hh^T  (0 at t = T: truncation)
    dA_t   = dH_t * phi'(A_t)        phi' = 1 - H_t^2 for tanh,  [H_t > 0] for ReLU
    dW_hh += H_{t-1}^T dA_t          dW_xh += X_t^T dA_t          db_xh = db_hh += sum_b dA_t
    dX_t   = dA_t W_xh^T             (to the layer below; nothing for one-hot token input)

dA_t W_hh^T is the factor that is multiplied in once per step: its norm shrinking or growing is the
vanishing or exploding gradient.
"""
from ..backend import xp_of
from .common import project_input, project_input_backward

GATES = 1
STATE = ("H",)
SAVED = {}                            # the backward needs only H_t, which is the state
CARRIED = {}
TORCH_MODULE = "RNN"                  # torch.nn.RNN: the same equations, for comparisons
NONLINEARITIES = ("tanh", "relu")
FORWARD_KERNEL, BACKWARD_KERNEL = "rnn_forward", "rnn_backward"


def zero_state(B, nh, xp, dtype):
    return (xp.zeros((B, nh), dtype=dtype),)


def step_forward(Ax, Ah, b_hh, H, relu):
    """One step. Ax (B, nh) = X_t W_xh + b_xh; Ah (B, nh) = H_{t-1} W_hh; b_hh (nh,). Writes H <- H_t."""
    xp = xp_of(Ax)
    A = Ax + Ah + b_hh
    H[...] = xp.maximum(A, 0) if relu else xp.tanh(A)


def step_backward(dH_above, dH_rec, H, dA, relu):
    """One step back. dL/dH_t = dH_above + dH_rec; H (B, nh) = H_t. Writes dA (B, nh) = dL/dA_t."""
    dH = dH_above + dH_rec
    dA[...] = dH * (H > 0) if relu else dH * (1 - H * H)


def forward(p, X, state, relu=False):
    """X: (T, B) ids or (T, B, ni); state: (H_0,) with H_0 (B, nh). -> Hs (T, B, nh), (H_T,), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    (H_0,) = state
    xp, (B, nh), T = xp_of(H_0), H_0.shape, X.shape[0]
    Hs = xp.empty((T + 1, B, nh), H_0.dtype)                              # Hs[t] holds H_t
    Hs[0] = H_0
    for t in range(T):
        Ax = project_input(X[t], W_xh) + b_xh                            # (B, nh)
        step_forward(Ax, Hs[t] @ W_hh, b_hh, Hs[t + 1], relu)
    return Hs[1:], (Hs[T],), (X, Hs, relu)


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, nh) from above; dstate: (dH_T,) reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, ni) or None, (dH_0,), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, Hs, relu = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dH_rec = xp.zeros_like(dHs[0]) if dstate is None else dstate[0].copy()   # (B, nh) from step t+1
    dA = xp.empty_like(dHs[0])
    dXs = []
    for t in reversed(range(X.shape[0])):
        if trace is not None:
            trace.append(float(xp.linalg.norm(dHs[t] + dH_rec)))
        step_backward(dHs[t], dH_rec, Hs[t + 1], dA, relu)
        grads["W_hh"] += Hs[t].T @ dA
        grads["b_xh"] += dA.sum(axis=0)
        grads["b_hh"] += dA.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dA, grads["W_xh"]))
        dH_rec = dA @ W_hh.T                                              # to H_{t-1}
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_rec,), grads
