r"""SGD with momentum (torch.optim.SGD with momentum > 0, dampening 0), after global-norm clipping:

    g  <- scale * g + wd * p
    u  <- mu * u + g                  (u starts at 0, so the first step has u = g)
    p  <- p - lr * (g + mu * u)       Nesterov: the step looks ahead along the velocity
    p  <- p - lr * u                  otherwise
"""
STATE = ("u",)
LR = 0.2                 # the book's SGD rate 2 times (1 - mu): the same step once the velocity has built up
DEFAULTS = dict(momentum=0.9, nesterov=False, weight_decay=0.0)
KERNEL = "momentum_update"


def update(p, g, scale, u, t, lr, momentum, nesterov, weight_decay):
    d = scale * g
    if weight_decay:
        d = d + weight_decay * p
    u *= momentum
    u += d
    p -= lr * (d + momentum * u if nesterov else u)
