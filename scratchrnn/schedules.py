r"""Learning-rate schedules: the rate of every step, from the epoch and the share of it done.

With lr the base rate, e the epochs done before this one, x = e + (i + 1) / n after step i of the n of an
epoch, and E the epochs of the run:

    constant                       lr
    char-rnn  (decay r, after k)   lr * r ** max(0, e - k + 1)        char-rnn's: times r at the end of
                                                                      every epoch from epoch k on
    step      (every s, gamma)     lr * gamma ** floor(e / s)
    cosine    (warm-up w)          lr * x / w                          while x < w, then
                                   lr * (1 + cos(pi * (x - w) / (E - w))) / 2
"""
import math

from .errors import ConfigError

SCHEDULES = ("constant", "char-rnn", "step", "cosine")
# Their parameters, with char-rnn's defaults for its decay (0.97 after epoch 10).
SCHEDULE_DEFAULTS = dict(schedule="constant", lr_decay=0.97, decay_after=10, step_size=50, gamma=0.5, warmup=1.0)
# Which schedule takes which of them.
SCHEDULE_PARAMETERS = {"constant": (), "char-rnn": ("lr_decay", "decay_after"), "step": ("step_size", "gamma"),
                       "cosine": ("warmup",)}


def learning_rate(lr, epoch, fraction, epochs, schedule=SCHEDULE_DEFAULTS["schedule"], **parameters):
    """The rate of the step that ends `fraction` of the way through epoch `epoch` (0-based) of `epochs`.
    parameters: lr_decay, decay_after, step_size, gamma, warmup; each missing one takes SCHEDULE_DEFAULTS'."""
    p = {**SCHEDULE_DEFAULTS, **parameters}
    if schedule == "constant":
        return lr
    if schedule == "char-rnn":
        return lr * p["lr_decay"] ** max(0, epoch - p["decay_after"] + 1)
    if schedule == "step":
        return lr * p["gamma"] ** (epoch // p["step_size"])
    if schedule == "cosine":
        x, warmup = epoch + fraction, p["warmup"]
        if x < warmup:
            return lr * x / warmup
        return lr * (1 + math.cos(math.pi * min(1.0, (x - warmup) / max(epochs - warmup, 1e-12)))) / 2
    raise ConfigError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def check_schedule(config):
    """A schedule's parameters in their ranges, before training."""
    c = {**SCHEDULE_DEFAULTS, **{k: v for k, v in config.items() if k in SCHEDULE_DEFAULTS and v is not None}}
    if c["schedule"] not in SCHEDULES:
        raise ConfigError(f"unknown schedule {c['schedule']!r}; choose one of {', '.join(SCHEDULES)}")
    if not 0 < c["lr_decay"] <= 1 or not 0 < c["gamma"] <= 1:
        raise ConfigError("--lr-decay and --gamma must be in (0, 1]")
    if c["decay_after"] < 0 or c["step_size"] < 1 or not c["warmup"] >= 0:
        raise ConfigError("--decay-after and --warmup must be >= 0, --step-size at least 1")
    return c


def check_schedule_takes(config):
    """A new run's schedule parameter set to other than its default where its schedule does not take it: one line (it
    was ignored without a word: --warmup 2 under the default constant schedule trained at the full rate at once)."""
    schedule = config.get("schedule") or SCHEDULE_DEFAULTS["schedule"]
    for key, default in SCHEDULE_DEFAULTS.items():
        if key == "schedule" or key in SCHEDULE_PARAMETERS.get(schedule, ()) or config.get(key) in (None, default):
            continue
        owner = next(name for name, keys in SCHEDULE_PARAMETERS.items() if key in keys)
        raise ConfigError(f"the {schedule} schedule takes no --{key.replace('_', '-')}; it is the {owner} schedule's: "
                          f"give --schedule {owner} with it")


def rate_of(config, epoch, batches):
    """The rate of each step of epoch `epoch`, as a function of the step's index, for a run's config."""
    c = check_schedule(config)
    params = {k: c[k] for k in SCHEDULE_DEFAULTS}
    return lambda i: learning_rate(config["lr"], epoch, (i + 1) / max(batches, 1), config["epochs"], **params)
