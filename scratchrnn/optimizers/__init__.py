"""Optimisers: how the clipped gradient moves the parameters. Each is a small module that opens with its
update equations and writes the update in NumPy (or CuPy) over the flat parameter and gradient buffers:

    sgd.py        p -= lr * g                                          (the book's)
    momentum.py   SGD with (Nesterov) momentum                         (torch.optim.SGD(momentum=...))
    adam.py       Adam, and AdamW (its weight decay decoupled)        (torch.optim.Adam, AdamW)
    rmsprop.py    RMSprop                                              (char-rnn's; torch.optim.RMSprop)

Every rule takes the gradient g *before* clipping and the clipping factor `scale` (engines/clipping.py:
theta / ||g|| when ||g|| > theta, else 1), so that a fused kernel can clip and update in one pass. Each
module declares what an engine needs:

    STATE       names of its buffers, each the size of the flat parameter buffer, zero at the start
    DEFAULTS    its hyperparameters besides the learning rate, with PyTorch's defaults
    LR          the learning rate a run uses when none is given (SGD has none: its rate is the book's run's)
    KERNEL      the name of its fused twin (clipping and update in one pass over the buffers):
                engines/numba_kernels.py on the CPU, kernels/optim.cu on the GPU
    update(p, g, scale, *state, t, lr, **hyperparameters)    in place; t counts the steps from 1

`Optimizer` holds one rule's state and step count for one model; its `state_dict` goes into checkpoints.
"""
import math

import numpy as np

from ..backend import to_numpy
from ..errors import CheckpointError, ConfigError
from . import adam, momentum, rmsprop, sgd

# name -> (module, hyperparameters fixed by the name): AdamW is Adam with its weight decay decoupled.
OPTIMIZERS = {"sgd": (sgd, {}), "momentum": (momentum, {}), "adam": (adam, {"decoupled": False}),
              "adamw": (adam, {"decoupled": True}), "rmsprop": (rmsprop, {})}
# The weight decay AdamW uses when none is given (PyTorch's), where the others use none.
DEFAULT_DECAY = {"adamw": 0.01}
# Every hyperparameter a rule may take besides the learning rate (a run's config keeps them, None: default).
HYPERPARAMETERS = tuple(dict.fromkeys(k for module, fixed in OPTIMIZERS.values() for k in module.DEFAULTS
                                      if k not in fixed))


def default_lr(name, sgd_lr):
    """The learning rate of a run that names none: `sgd_lr` (the book's, for its run) for SGD, else the rule's LR."""
    return sgd_lr if name == "sgd" else OPTIMIZERS[name][0].LR


def optimizer_from_config(config, model):
    """The optimiser a run's config names ('sgd' when it names none, as the book), for this model."""
    return Optimizer(config.get("optimizer") or "sgd", model, **{k: config.get(k) for k in HYPERPARAMETERS})


class Optimizer:
    """One rule's state for one model: its buffers (on the model's device), the step count, the
    hyperparameters. `update` is the reference (NumPy / CuPy) update; the fast engine runs its kernel."""

    def __init__(self, name, model, **hyperparameters):
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
        self.name = name
        self.rule, fixed = OPTIMIZERS[name]
        given = {k: v for k, v in hyperparameters.items() if v is not None}
        unknown = sorted(set(given) - set(self.rule.DEFAULTS))
        if unknown:
            raise ConfigError(f"the {name} optimizer takes no {unknown[0]!r}")
        decay = {"weight_decay": DEFAULT_DECAY[name]} if name in DEFAULT_DECAY else {}
        self.hyper = {**self.rule.DEFAULTS, **decay, **given, **fixed}
        check_hyperparameters(self.hyper)
        xp, size, dtype = model.xp, model.flat_params.shape[0], model.dtype
        self.xp = xp
        self.state = {n: xp.zeros(size, dtype=dtype) for n in self.rule.STATE}
        self.t = 0

    def state_dict(self):
        """What a checkpoint keeps: the buffers (host arrays); the step count goes into the manifest."""
        return {f"optimizer.{n}": to_numpy(a) for n, a in self.state.items()}

    def load_state_dict(self, arrays, t):
        """The buffers and the step count a checkpoint kept (a checkpoint without them: the book's SGD)."""
        for n, a in self.state.items():
            value = arrays.get(f"optimizer.{n}")
            if value is None or value.shape != a.shape:
                raise CheckpointError(f"the checkpoint has no {self.name} state {n!r} of {a.shape[0]:,} values")
            if not np.all(np.isfinite(value)):
                raise CheckpointError(f"the checkpoint's {self.name} state {n!r} holds NaN or infinite values")
            a[...] = self.xp.asarray(value, dtype=a.dtype)
        self.t = int(t)


def check_hyperparameters(hyper):
    """Each hyperparameter in its range, or one line naming it."""
    ranges = {"momentum": (0.0, 1.0, True), "beta1": (0.0, 1.0, False), "beta2": (0.0, 1.0, False),
              "alpha": (0.0, 1.0, False), "eps": (0.0, math.inf, False), "weight_decay": (0.0, math.inf, True)}
    for name, value in hyper.items():
        if name in ranges:
            low, high, low_ok = ranges[name]
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value)
                    and (low <= value if low_ok else low < value) and value < high):
                raise ConfigError(f"{name.replace('_', ' ')} must be in {'[' if low_ok else '('}{low:g}, {high:g}) "
                                  f"(got {value!r})")
    if hyper.get("nesterov") and not hyper.get("momentum"):    # (PyTorch's SGD refuses it too)
        raise ConfigError("Nesterov momentum needs a momentum > 0: with none, --nesterov trains as plain SGD")
