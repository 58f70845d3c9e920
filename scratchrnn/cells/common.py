"""Pieces every cell uses: the gate nonlinearity, the gate blocks, the input projection and its backward."""
from ..backend import scatter_add_rows, xp_of


def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)), written as (1 + tanh(x/2)) / 2 so it never overflows.
    The Numba and CUDA twins use the same formula, so all paths agree to the last bits."""
    xp = xp_of(x)
    return 0.5 * (xp.tanh(0.5 * x) + 1.0)


def blocks(M, G):
    """The G gate blocks of M (B, G*nh), as views (B, nh) in PyTorch's order: writing one writes M."""
    nh = M.shape[-1] // G
    return [M[..., k * nh:(k + 1) * nh] for k in range(G)]


def is_tokens(X):
    """Integer input means token ids: a one-hot input that is never built as a matrix."""
    return X.dtype.kind in "iu"


def project_input(X_t, W_xh):
    """X_t @ W_xh. For token ids (one-hot rows) it is the row gather W_xh[X_t]: the same numbers,
    without multiplying by a matrix of zeros. X_t: (B,) ids or (B, ni); W_xh: (ni, G*nh) -> (B, G*nh)."""
    if is_tokens(X_t):
        return W_xh[X_t]
    return X_t @ W_xh


def project_input_backward(X_t, W_xh, dA, dW_xh):
    """Backward of `project_input`: adds X_t^T dA into dW_xh and returns dX_t = dA W_xh^T
    (None for token ids: nothing flows into a one-hot input; dW_xh gets dA scattered to the rows)."""
    if is_tokens(X_t):
        scatter_add_rows(xp_of(dA), dW_xh, X_t, dA)
        return None
    dW_xh += X_t.T @ dA
    return dA @ W_xh.T

