r"""Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter: the weight decay taken out of the gradient), after
global-norm clipping; t counts the steps from 1:

    g  <- scale * g  (+ wd * p for Adam)          AdamW instead:  p <- p * (1 - lr * wd)
    m  <- b1 * m + (1 - b1) * g                   first moment (mean of g)
    v  <- b2 * v + (1 - b2) * g^2                 second moment (mean of g^2)
    p  <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

The two (1 - b^t) undo the moments' start at 0: without them the first steps would be too short.
"""
import math

STATE = ("m", "v")
LR = 3e-3                # the best of our sweep (README; torch-rnn and char-rnn-tensorflow use 2e-3)
DEFAULTS = dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False)
KERNEL = "adam_update"


def update(p, g, scale, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    d = scale * g
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        d = d + weight_decay * p
    m *= beta1
    m += (1 - beta1) * d
    v *= beta2
    v += (1 - beta2) * d * d
    step = lr / (1 - beta1 ** t)
    p -= step * m / ((v ** 0.5) / math.sqrt(1 - beta2 ** t) + eps)
