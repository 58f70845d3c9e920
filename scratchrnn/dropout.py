r"""Inverted dropout between layers, forward beside backward.

Where: on the output of every recurrent layer, the last one included, that is on what the next layer reads
and on what the output layer reads: char-rnn's placement. nn.LSTM's `dropout` drops only between layers
(not after the last), so a one-layer model gets none at all; the output layer, which reads the top layer,
is where a character model overfits first, so it gets dropout too. The recurrent connections (H_{t-1} into
step t) are never dropped: the state a layer carries through time stays whole.

With p the probability of dropping a unit and U uniform in [0, 1), one per element, drawn from the run's
own seeded generator for every chunk:

    M  = [U >= p] / (1 - p)          (L, T, B, nh): 0, or 1 / (1 - p), so that E[M] = 1
    forward:   Hd = Hs * M           what the layer above (or the output layer) reads
    backward:  dHs = dHd * M         the gradient reaching the layer's own output

Dividing by 1 - p while training ("inverted" dropout) keeps the expected input of every layer the same,
so nothing changes at validation and generation, where there is no dropout at all.
"""
import numpy as np


def dropout_masks(rng, p, L, T, B, nh, xp, dtype):
    """One chunk's masks (L, T, B, nh), drawn on the host from the run's generator `rng`. U is drawn in float32
    (half the bytes of float64, and [U >= p] needs no more), and the mask is written once, in `dtype`."""
    keep = rng.random((L, T, B, nh), dtype=np.float32) >= np.float32(p)
    return xp.asarray(np.multiply(keep, 1.0 / (1.0 - p), dtype=dtype))


def dropout_forward(Hs, M):
    """Hs, M (T, B, nh) -> Hd = Hs * M."""
    return Hs * M


def dropout_backward(dHd, M):
    """dL/dHd (T, B, nh) -> dL/dHs = dHd * M."""
    return dHd * M
