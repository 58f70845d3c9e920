r"""The gated recurrent unit, in PyTorch's form (gate order r, z, n).

Forward, for t = 1..T. The input and hidden projections are kept apart because the reset gate
multiplies only the hidden part of the candidate:

    [Xr, Xz, Xn] = X_t W_xh + b_xh                        (B, 3H)   input part of each gate
    [Hr, Hz, Hn] = H_{t-1} W_hh + b_hh                    (B, 3H)   hidden part of each gate
    R   = sigma(Xr + Hr)                                  reset gate
    Z   = sigma(Xz + Hz)                                  update gate
    N   = tanh(Xn + R * Hn)                               candidate state
    H_t = (1 - Z) * N + Z * H_{t-1}

Backward, walking t = T..1 with dH = dHs[t] + (gradient from step t+1):

    dN  = dH * (1 - Z)             dZ = dH * (H_{t-1} - N)          dH_{t-1}  = dH * Z   (+ below)
    dAn = dN * (1 - N^2)           (gradient at the pre-activation Xn + R * Hn)
    dR  = dAn * Hn
    dAr = dR * R (1 - R)           dAz = dZ * Z (1 - Z)
    input part:   dAx = [dAr, dAz, dAn]        -> dW_xh += X_t^T dAx,  db_xh += sum dAx
    hidden part:  dAh = [dAr, dAz, dAn * R]    -> dW_hh += H_{t-1}^T dAh, db_hh += sum dAh
    dH_{t-1} += dAh W_hh^T         dX_t = dAx W_xh^T

The path dH_{t-1} = dH * Z is the GRU's shortcut: when Z is near 1 the gradient flows back unchanged.
"""
from ..backend import xp_of
from .common import project_input, project_input_backward, sigmoid

GATES = 3


def zero_state(batch_size, num_hiddens, xp, dtype):
    return (xp.zeros((batch_size, num_hiddens), dtype=dtype),)


def forward(p, X, state):
    """X: (T, B) ids or (T, B, in); state: (H,) with H (B, H). -> Hs (T, B, H), (H_T,), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    (H,) = state
    xp = xp_of(H)
    h = H.shape[1]
    Hs, steps = [], []
    for t in range(X.shape[0]):
        Ax = project_input(X[t], W_xh) + b_xh                        # (B, 3H)
        Ah = H @ W_hh + b_hh                                         # (B, 3H)
        R = sigmoid(Ax[:, :h] + Ah[:, :h])
        Z = sigmoid(Ax[:, h:2 * h] + Ah[:, h:2 * h])
        Hn = Ah[:, 2 * h:]
        N = xp.tanh(Ax[:, 2 * h:] + R * Hn)
        steps.append((H, R, Z, N, Hn))
        H = (1 - Z) * N + Z * H
        Hs.append(H)
    return xp.stack(Hs), (H,), (X, steps)


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, H) from above; dstate: gradient reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, in) or None, (dH_0,), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, steps = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dXs = []
    dH_next = xp.zeros_like(dHs[0]) if dstate is None else dstate[0]
    for t in reversed(range(X.shape[0])):
        H_prev, R, Z, N, Hn = steps[t]
        dH = dHs[t] + dH_next                                        # (B, H)
        if trace is not None:
            trace.append(float(xp.linalg.norm(dH)))
        dN = dH * (1 - Z)
        dZ = dH * (H_prev - N)
        dAn = dN * (1 - N ** 2)
        dR = dAn * Hn
        dAr = dR * R * (1 - R)
        dAz = dZ * Z * (1 - Z)
        dAx = xp.concatenate([dAr, dAz, dAn], axis=1)                # (B, 3H)
        dAh = xp.concatenate([dAr, dAz, dAn * R], axis=1)            # (B, 3H)
        grads["W_hh"] += H_prev.T @ dAh
        grads["b_hh"] += dAh.sum(axis=0)
        grads["b_xh"] += dAx.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dAx, grads["W_xh"]))
        dH_next = dH * Z + dAh @ W_hh.T                              # to H_{t-1}
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_next,), grads
