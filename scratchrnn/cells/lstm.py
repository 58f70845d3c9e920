r"""Long short-term memory, in PyTorch's form (gate order i, f, g, o).

Forward, for t = 1..T:

    A   = X_t W_xh + b_xh + H_{t-1} W_hh + b_hh           (B, 4H) = [Ai, Af, Ag, Ao]
    I   = sigma(Ai)     input gate
    F   = sigma(Af)     forget gate
    G   = tanh(Ag)      candidate cell (the book's C~)
    O   = sigma(Ao)     output gate
    C_t = F * C_{t-1} + I * G                             memory cell
    H_t = O * tanh(C_t)                                   hidden state

Backward, walking t = T..1. Both H_t and C_t carry gradient back in time:

    dH  = dHs[t] + dH_next                                (from above, and from step t+1)
    dO  = dH * tanh(C_t)
    dC  = dC_next + dH * O * (1 - tanh(C_t)^2)
    dI  = dC * G        dF = dC * C_{t-1}      dG = dC * I
    dA  = [dI * I(1-I), dF * F(1-F), dG * (1-G^2), dO * O(1-O)]        (B, 4H)
    dW_hh += H_{t-1}^T dA     dW_xh += X_t^T dA     db_xh = db_hh += sum_b dA
    dH_next = dA W_hh^T       dC_next = dC * F       dX_t = dA W_xh^T

dC_next = dC * F is the LSTM's highway: while the forget gate stays open, the cell's gradient
travels back in time without being squashed.
"""
from ..backend import xp_of
from .common import project_input, project_input_backward, sigmoid

GATES = 4


def zero_state(batch_size, num_hiddens, xp, dtype):
    return (xp.zeros((batch_size, num_hiddens), dtype=dtype),
            xp.zeros((batch_size, num_hiddens), dtype=dtype))


def forward(p, X, state):
    """X: (T, B) ids or (T, B, in); state: (H, C), each (B, H). -> Hs (T, B, H), (H_T, C_T), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    H, C = state
    xp = xp_of(H)
    h = H.shape[1]
    Hs, steps = [], []
    for t in range(X.shape[0]):
        A = project_input(X[t], W_xh) + b_xh + H @ W_hh + b_hh       # (B, 4H)
        I = sigmoid(A[:, :h])
        F = sigmoid(A[:, h:2 * h])
        G = xp.tanh(A[:, 2 * h:3 * h])
        O = sigmoid(A[:, 3 * h:])
        H_prev, C_prev = H, C
        C = F * C_prev + I * G
        tanhC = xp.tanh(C)
        H = O * tanhC
        steps.append((H_prev, C_prev, I, F, G, O, tanhC))
        Hs.append(H)
    return xp.stack(Hs), (H, C), (X, steps)


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, H) from above; dstate: (dH_T, dC_T) reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, in) or None, (dH_0, dC_0), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, steps = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dXs = []
    if dstate is None:
        dH_next, dC_next = xp.zeros_like(dHs[0]), xp.zeros_like(dHs[0])
    else:
        dH_next, dC_next = dstate
    for t in reversed(range(X.shape[0])):
        H_prev, C_prev, I, F, G, O, tanhC = steps[t]
        dH = dHs[t] + dH_next                                        # (B, H)
        if trace is not None:
            trace.append(float(xp.linalg.norm(dH)))
        dO = dH * tanhC
        dC = dC_next + dH * O * (1 - tanhC ** 2)
        dI, dF, dG = dC * G, dC * C_prev, dC * I
        dA = xp.concatenate([dI * I * (1 - I), dF * F * (1 - F),
                             dG * (1 - G ** 2), dO * O * (1 - O)], axis=1)   # (B, 4H)
        grads["W_hh"] += H_prev.T @ dA
        grads["b_xh"] += dA.sum(axis=0)
        grads["b_hh"] += dA.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dA, grads["W_xh"]))
        dH_next = dA @ W_hh.T                                        # to H_{t-1}
        dC_next = dC * F                                             # to C_{t-1}
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_next, dC_next), grads
