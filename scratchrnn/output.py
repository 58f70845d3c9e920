r"""The output layer and the loss, each with its backward.

Dense layer (hidden state -> one score per vocabulary entry), for all T*B positions (rows) at once:

    logits = H W_hq + b_q                 H (T*B, nh), W_hq (nh, V), b_q (V,)  -> (T*B, V)
    dH = dlogits W_hq^T      dW_hq = H^T dlogits      db_q = sum over rows of dlogits

Softmax cross-entropy, averaged over the T*B rows. Subtracting the row maximum m first changes
nothing mathematically and keeps exp() from overflowing:

    P[r, v] = exp(logits[r, v] - m_r) / sum_v' exp(logits[r, v'] - m_r)
    loss    = mean over rows r of ( log sum_v exp(logits[r, v] - m_r) - (logits[r, y_r] - m_r) )
    dlogits = (P - onehot(y)) / (T*B)

exp(loss) is the perplexity.
"""
from .backend import xp_of


def dense_forward(H, W_hq, b_q):
    """H (T*B, nh) -> logits (T*B, V)."""
    return H @ W_hq + b_q


def dense_backward(H, W_hq, dlogits):
    """-> dH (T*B, nh), dW_hq (nh, V), db_q (V,)."""
    return dlogits @ W_hq.T, H.T @ dlogits, dlogits.sum(axis=0)


def softmax_cross_entropy(logits, y):
    """logits (T*B, V), y (T*B,) ids -> (mean loss as a 0-d array, P (T*B, V) for the backward)."""
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    sum_exp = exp.sum(axis=1)
    rows = logits.shape[0]
    loss = (xp.log(sum_exp) - shifted[xp.arange(rows), y]).mean()
    P = exp / sum_exp[:, None]
    return loss, P


def softmax_cross_entropy_backward(P, y):
    """dloss/dlogits = (P - onehot(y)) / rows."""
    xp = xp_of(P)
    rows = P.shape[0]
    dlogits = P.copy()
    dlogits[xp.arange(rows), y] -= 1
    return dlogits / rows
