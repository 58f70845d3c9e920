r"""Long short-term memory, in PyTorch's form (gate order i, f, g, o; the book's C~ is our C_tilde).

Forward, for t = 1..T:

    A   = X_t W_xh + b_xh + H_{t-1} W_hh + b_hh           (B, 4nh) = [Ai, Af, Ac, Ao]
    I   = sigma(Ai)     input gate
    F   = sigma(Af)     forget gate
    C_tilde = tanh(Ac)  candidate memory cell
    O   = sigma(Ao)     output gate
    C_t = F * C_{t-1} + I * C_tilde                       memory cell
    H_t = O * tanh(C_t)                                   hidden state

Backward, walking t = T..1. Both H_t and C_t carry gradient back in time:

    dH  = dHs[t] + dH_rec                                 (from above, and dA_{t+1} W_hh^T from step t+1)
    dC  = dC_next + dH * O * (1 - tanh(C_t)^2)
    dA  = [dC * C_tilde * I(1-I),  dC * C_{t-1} * F(1-F),  dC * I * (1 - C_tilde^2),  dH * tanh(C_t) * O(1-O)]
    dW_hh += H_{t-1}^T dA     dW_xh += X_t^T dA     db_xh = db_hh += sum_b dA
    dH_rec = dA W_hh^T        dC_next = dC * F        dX_t = dA W_xh^T

dC_next = dC * F is the LSTM's highway: while the forget gate stays open, the cell's gradient
travels back in time without being squashed.
"""
from ..backend import xp_of
from .common import blocks, project_input, project_input_backward, sigmoid

GATES = 4
STATE = ("H", "C")
SAVED = {"gates": GATES}              # [I, F, C_tilde, O] of every step
CARRIED = {"dC": "C"}                 # dC_next, the gradient reaching C_t from step t+1
TORCH_MODULE = "LSTM"                 # torch.nn.LSTM: the same equations, for comparisons
NONLINEARITIES = ("tanh",)
FORWARD_KERNEL, BACKWARD_KERNEL = "lstm_forward", "lstm_backward"


def zero_state(B, nh, xp, dtype):
    return (xp.zeros((B, nh), dtype=dtype), xp.zeros((B, nh), dtype=dtype))


def step_forward(Ax, Ah, b_hh, C_prev, gates, C, H):
    """One step. Ax (B, 4nh) = X_t W_xh + b_xh; Ah (B, 4nh) = H_{t-1} W_hh; b_hh (4nh,); C_prev (B, nh).
    Writes gates (B, 4nh) <- [I, F, C_tilde, O], C <- C_t and H <- H_t (B, nh)."""
    xp = xp_of(Ax)
    Ai, Af, Ac, Ao = blocks(Ax + Ah + b_hh, 4)
    I, F, C_tilde, O = blocks(gates, 4)
    I[...] = sigmoid(Ai)
    F[...] = sigmoid(Af)
    C_tilde[...] = xp.tanh(Ac)
    O[...] = sigmoid(Ao)
    C[...] = F * C_prev + I * C_tilde
    H[...] = O * xp.tanh(C)


def step_backward(dH_above, dH_rec, dC, gates, C_prev, C, dA):
    """One step back. dH_above, dH_rec (B, nh): dL/dH_t from the layer above and from step t+1;
    dC (B, nh) holds dC_next on entry and dC_prev = dC * F on exit; gates, C_prev, C from the forward.
    Writes dA (B, 4nh), the gradient at the gates' pre-activations. tanh(C_t) is recomputed, not stored."""
    xp = xp_of(dA)
    I, F, C_tilde, O = blocks(gates, 4)
    dAi, dAf, dAc, dAo = blocks(dA, 4)
    tanh_C = xp.tanh(C)
    dH = dH_above + dH_rec
    dC += dH * O * (1 - tanh_C * tanh_C)
    dAi[...] = dC * C_tilde * I * (1 - I)
    dAf[...] = dC * C_prev * F * (1 - F)
    dAc[...] = dC * I * (1 - C_tilde * C_tilde)
    dAo[...] = dH * tanh_C * O * (1 - O)
    dC *= F


def forward(p, X, state):
    """X: (T, B) ids or (T, B, ni); state: (H_0, C_0), each (B, nh). -> Hs (T, B, nh), (H_T, C_T), cache."""
    W_xh, W_hh, b_xh, b_hh = p["W_xh"], p["W_hh"], p["b_xh"], p["b_hh"]
    H_0, C_0 = state
    xp, (B, nh), T = xp_of(H_0), H_0.shape, X.shape[0]
    Hs, Cs = xp.empty((T + 1, B, nh), H_0.dtype), xp.empty((T + 1, B, nh), H_0.dtype)   # [t] holds H_t
    gates = xp.empty((T, B, 4 * nh), H_0.dtype)
    Hs[0], Cs[0] = H_0, C_0
    for t in range(T):
        Ax = project_input(X[t], W_xh) + b_xh                            # (B, 4nh)
        step_forward(Ax, Hs[t] @ W_hh, b_hh, Cs[t], gates[t], Cs[t + 1], Hs[t + 1])
    return Hs[1:], (Hs[T], Cs[T]), (X, Hs, Cs, gates)


def backward(p, dHs, cache, dstate=None, trace=None):
    """dHs: (T, B, nh) from above; dstate: (dH_T, dC_T) reaching the final state (None: zero).
    trace: a list to which ||dL/dH_t|| is appended for t = T..1 (for diagnostics), or None.
    -> dX (T, B, ni) or None, (dH_0, dC_0), grads."""
    W_xh, W_hh = p["W_xh"], p["W_hh"]
    X, Hs, Cs, gates = cache
    xp = xp_of(dHs)
    grads = {name: xp.zeros_like(value) for name, value in p.items()}
    dH_rec = xp.zeros_like(dHs[0]) if dstate is None else dstate[0].copy()
    dC = xp.zeros_like(dHs[0]) if dstate is None else dstate[1].copy()
    dA = xp.empty_like(gates[0])                                          # (B, 4nh)
    dXs = []
    for t in reversed(range(X.shape[0])):
        if trace is not None:
            trace.append(float(xp.linalg.norm(dHs[t] + dH_rec)))
        step_backward(dHs[t], dH_rec, dC, gates[t], Cs[t], Cs[t + 1], dA)
        grads["W_hh"] += Hs[t].T @ dA
        grads["b_xh"] += dA.sum(axis=0)
        grads["b_hh"] += dA.sum(axis=0)
        dXs.append(project_input_backward(X[t], W_xh, dA, grads["W_xh"]))
        dH_rec = dA @ W_hh.T                                              # to H_{t-1}
    dX = None if dXs[0] is None else xp.stack(dXs[::-1])
    return dX, (dH_rec, dC), grads
