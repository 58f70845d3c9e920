"""Global-norm clipping: the one rule every engine follows (the reference in NumPy, the Numba and CUDA
kernels in one pass), and the one place that checks a threshold."""
import math

import numpy as np

from ..errors import ConfigError


def clipping_threshold(theta):
    """The one rule of global-norm clipping, for every engine (d2l.ai's `grad_clipping`):

        g <- g * theta / ||g||    when ||g|| > theta,   else unchanged

    theta None means no clipping; otherwise it must be a positive finite number. Returns theta as the
    update kernels take it: +inf for None (no norm is above it). No epsilon is needed: the division
    happens only when ||g|| > theta > 0."""
    if theta is None:
        return math.inf
    if isinstance(theta, (bool, np.bool_)) or not isinstance(theta, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(theta) and theta > 0):
        raise ConfigError(f"clipping threshold theta must be a positive finite number, or None for no clipping "
                          f"(got {theta!r})")
    return float(theta)
