r"""RMSprop (Tieleman & Hinton; char-rnn's optimiser), as torch.optim.RMSprop (centered=False), after
global-norm clipping:

    g  <- scale * g + wd * p
    s  <- alpha * s + (1 - alpha) * g^2           running mean of g^2
    p  <- p - lr * g / (sqrt(s) + eps)            momentum 0
    b  <- mu * b + g / (sqrt(s) + eps);  p <- p - lr * b          momentum mu > 0
"""
STATE = ("s", "b")
LR = 2e-3                # char-rnn's learning_rate
DEFAULTS = dict(alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0)
KERNEL = "rmsprop_update"


def update(p, g, scale, s, b, t, lr, alpha, eps, momentum, weight_decay):
    d = scale * g
    if weight_decay:
        d = d + weight_decay * p
    s *= alpha
    s += (1 - alpha) * d * d
    step = d / (s ** 0.5 + eps)
    if momentum:
        b *= momentum
        b += step
        step = b
    p -= lr * step
