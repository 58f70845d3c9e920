r"""The gated recurrent unit, in PyTorch's form (gate order r, z, n).

Forward, for t = 1..T. The input and hidden projections are kept apart because the reset gate
multiplies only the hidden part of the candidate:

    [Xr, Xz, Xn] = X_t W_xh + b_xh                        (B, 3nh)   input part of each gate
    [Hr, Hz, Hn] = H_{t-1} W_hh + b_hh                    (B, 3nh)   hidden part of each gate
    R   = sigma(Xr + Hr)                                  reset gate
    Z   = sigma(Xz + Hz)                                  update gate
    N   = tanh(Xn + R * Hn)                               candidate state
    H_t = (1 - Z) * N + Z * H_{t-1}

Backward, walking t = T..1 with dH = dHs[t] + (gradient from step t+1):

    dAn = dH * (1 - Z) * (1 - N^2)       (gradient at the pre-activation Xn + R * Hn)
    dAr = dAn * Hn * R (1 - R)           dAz = dH * (H_{t-1} - N) * Z (1 - Z)
    input part:   dAx = [dAr, dAz, dAn]        -> dW_xh += X_t^T dAx,  db_xh += sum dAx
    hidden part:  dAh = [dAr, dAz, dAn * R]    -> dW_hh += H_{t-1}^T dAh, db_hh += sum dAh
    dH_{t-1} = dH * Z  +  dAh W_hh^T     dX_t = dAx W_xh^T

The two terms of dH_{t-1} are kept apart, as the kernels keep them: dH_skip = dH * Z is written by the
step, dH_rec = dAh W_hh^T by the GEMM after it; step t-1 adds them. dH * Z is the GRU's shortcut: when
Z is near 1 the gradient flows back unchanged.
"""
from ..backend import xp_of
from .common import blocks, project_input, project_input_backward, sigmoid

GATES = 3
STATE = ("H",)
SAVED = {"gates": GATES, "Hn": 1}     # [R, Z, N] and Hn = H_{t-1} W_hn + b_hn of every step
CARRIED = {"dH_skip": "H"}            # dH_{t+1} * Z_{t+1}: the shortcut's share of dL/dH_t
SHARED_BLOCKS = 2                     # dAh's first two blocks are dAx's: [dAr, dAz]
TORCH_MODULE = "GRU"                  # torch.nn.GRU: the same equations, for comparisons
NONLINEARITIES = ("tanh",)
FORWARD_KERNEL, BACKWARD_KERNEL = "gru_forward", "gru_backward"


def zero_state(B, nh, xp, dtype):
    return (xp.zeros((B, nh), dtype=dtype),)


def step_forward(Ax, Ah, b_hh, H_prev, gates, Hn, H):
    """One step. Ax (B, 3nh) = X_t W_xh + b_xh; Ah (B, 3nh) = H_{t-1} W_hh (b_hh added here); H_prev (B, nh).
    Writes gates (B, 3nh) <- [R, Z, N], Hn (B, nh) <- H_{t-1} W_hn + b_hn, H <- H_t (B, nh)."""
    xp = xp_of(Ax)
    Xr, Xz, Xn = blocks(Ax, 3)
    Hr, Hz, Hn_t = blocks(Ah + b_hh, 3)
    R, Z, N = blocks(gates, 3)
    R[...] = sigmoid(Xr + Hr)
    Z[...] = sigmoid(Xz + Hz)
    Hn[...] = Hn_t
    N[...] = xp.tanh(Xn + R * Hn)
    H[...] = (1 - Z) * N + Z * H_prev


def step_backward(dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh):
    """One step back. dL/dH_t = dH_above + dH_rec + dH_skip (from above, and the two paths from step t+1);
    dH_skip holds dH_{t+1} * Z_{t+1} on entry and dH_t * Z_t on exit. Writes dAx and dAh (B, 3nh), the
    gradients at the input and the hidden parts of the gates."""
    R, Z, N = blocks(gates, 3)
    dAr, dAz, dAn = blocks(dAx, 3)
    dHr, dHz, dHn = blocks(dAh, 3)
    dH = dH_above + dH_rec + dH_skip
    dAn[...] = dH * (1 - Z) * (1 - N * N)
    dAr[...] = dAn * Hn * R * (1 - R)
    dAz[...] = dH * (H_prev - N) * Z * (1 - Z)
    dHr[...] = dAr
    dHz[...] = dAz
    dHn[...] = dAn * R
    dH_skip[...] = dH * Z


def forward(p, X, state):
    """X: (T, B) ids or (T, B, ni); state: (H_0,) with H_0 (B, nh). -> Hs (T, B, nh), (H_T,), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    (H_0,) = state
    xp, (B, nh), T = xp_of(H_0), H_0.shape, X.shape[0]
    Hs = xp.empty((T + 1, B, nh), H_0.dtype)                              # Hs[t] holds H_t
    gates, Hn = xp.empty((T, B, 3 * nh), H_0.dtype), xp.empty((T, B, nh), H_0.dtype)
    Hs[0] = H_0
    for t in range(T):
        Ax = project_input(X[t], W_xh) + b_xh                            # (B, 3nh)
        step_forward(Ax, Hs[t] @ W_hh, b_hh, Hs[t], gates[t], Hn[t], Hs[t + 1])
    return Hs[1:], (Hs[T],), (X, Hs, gates, Hn)


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, nh) from above; dstate: (dH_T,) reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, ni) or None, (dH_0,), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, Hs, gates, Hn = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dH_rec = xp.zeros_like(dHs[0]) if dstate is None else dstate[0].copy()
    dH_skip = xp.zeros_like(dHs[0])
    dAx, dAh = xp.empty_like(gates[0]), xp.empty_like(gates[0])          # (B, 3nh)
    dXs = []
    for t in reversed(range(X.shape[0])):
        if trace is not None:
            trace.append(float(xp.linalg.norm(dHs[t] + dH_rec + dH_skip)))
        step_backward(dHs[t], dH_rec, dH_skip, gates[t], Hn[t], Hs[t], dAx, dAh)
        grads["W_hh"] += Hs[t].T @ dAh
        grads["b_hh"] += dAh.sum(axis=0)
        grads["b_xh"] += dAx.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dAx, grads["W_xh"]))
        dH_rec = dAh @ W_hh.T                                             # to H_{t-1}, with dH_skip
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_rec + dH_skip,), grads
