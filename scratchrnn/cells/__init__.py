"""The three recurrent cells, each a readable NumPy/CuPy reference with its hand-written backward.

Every cell module has the same four names:

    GATES                               how many blocks of H the stacked weights hold (1, 3 or 4)
    zero_state(B, H, xp, dtype)         the initial state, a tuple of (B, H) arrays
    forward(p, X, state)                -> Hs (T, B, H), final state, cache
    backward(p, dHs, cache, dstate)     -> dX (or None), dstate0, grads of p

Parameters `p` of one layer (our names; PyTorch's at the boundary, see model.py):
    W_xh (in, G*H)   W_hh (H, G*H)   b_xh (G*H,)   b_hh (G*H,)
"""
from . import gru, lstm, rnn

CELLS = {"rnn": rnn, "gru": gru, "lstm": lstm}
