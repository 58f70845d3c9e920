r"""A learnable embedding layer: token ids -> dense vectors, with its backward (d2l.ai exercise:
"replace the one-hot encoding with learnable embeddings").

    E     (V, D)    one row per token
    X     (T, B)    token ids
    Emb = E[X]      (T, B, D)    a row gather

One-hot times a weight matrix is exactly this lookup: onehot(X) @ E selects row X of E, every other
term being a multiplication by 0. That is why the first layer of the one-hot model (its W_xh) already
*is* an embedding of size G*nh, computed by a gather; a separate E of size D < V adds a bottleneck
(and the ability to share it or initialise it from elsewhere), not new expressive power.

Backward: row X[t, b] of E received dEmb[t, b]; a token seen several times gets the sum:

    dE[v] = sum over (t, b) with X[t, b] = v of dEmb[t, b]     (= onehot(X)^T @ dEmb)
"""
from .backend import scatter_add_rows, xp_of


def embedding_forward(E, X):
    """E (V, D), X (T, B) ids -> (T, B, D)."""
    return E[X]


def embedding_backward(E, X, dEmb):
    """dEmb (T, B, D) -> dE (V, D)."""
    xp = xp_of(dEmb)
    dE = xp.zeros_like(E)
    scatter_add_rows(xp, dE, X.reshape(-1), dEmb.reshape(-1, E.shape[1]))
    return dE
