r"""Stochastic gradient descent, the book's update (d2l.ai `sgd`), after global-norm clipping:

    g  <- scale * g + wd * p          (scale: the clipping factor; wd: L2 weight decay, 0 by default)
    p  <- p - lr * g
"""
STATE = ()
DEFAULTS = dict(weight_decay=0.0)
KERNEL = "sgd_update"


def update(p, g, scale, t, lr, weight_decay):
    """In place over the flat buffers; g is left as it was. lr * (scale * g + wd * p), written so that
    without weight decay it is the one multiply-add per element the book's step is."""
    if weight_decay:
        p -= (lr * scale) * g + (lr * weight_decay) * p
    else:
        p -= (lr * scale) * g
