r"""The output layer and the loss, each with its backward.

Dense layer (hidden state -> one score per vocabulary entry), for all N = T*B positions at once:

    logits = H W_hq + b_q                 H (N, H), W_hq (H, V), b_q (V,)  -> (N, V)
    dH = dlogits W_hq^T      dW_hq = H^T dlogits      db_q = sum_n dlogits

Softmax cross-entropy, averaged over the N positions. Subtracting the row maximum m first changes
nothing mathematically and keeps exp() from overflowing:

    P[n, v] = exp(logits[n, v] - m_n) / sum_v' exp(logits[n, v'] - m_n)
    loss    = (1/N) sum_n ( log sum_v exp(logits[n, v] - m_n) - (logits[n, y_n] - m_n) )
    dlogits = (P - onehot(y)) / N

exp(loss) is the perplexity.
"""
from .backend import xp_of


def dense_forward(H, W_hq, b_q):
    """H (N, H) -> logits (N, V)."""
    return H @ W_hq + b_q


def dense_backward(H, W_hq, dlogits):
    """-> dH (N, H), dW_hq (H, V), db_q (V,)."""
    return dlogits @ W_hq.T, H.T @ dlogits, dlogits.sum(axis=0)


def softmax_cross_entropy(logits, y):
    """logits (N, V), y (N,) ids -> (mean loss as a 0-d array, P (N, V) for the backward)."""
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    sum_exp = exp.sum(axis=1)
    N = logits.shape[0]
    loss = (xp.log(sum_exp) - shifted[xp.arange(N), y]).mean()
    P = exp / sum_exp[:, None]
    return loss, P


def softmax_cross_entropy_backward(P, y):
    """dloss/dlogits = (P - onehot(y)) / N."""
    xp = xp_of(P)
    N = P.shape[0]
    dlogits = P.copy()
    dlogits[xp.arange(N), y] -= 1
    return dlogits / N
