"""Weight initialisers: the scale of a layer's random normal weights.

The book's ``weight_init_std`` is a number (a constant standard deviation, 0.01 by
default) or a name: ``"relu"``/``"he"`` for He, ``sqrt(2 / fan_in)``, suited to ReLU, and
``"sigmoid"``/``"xavier"`` for Xavier, ``sqrt(1 / fan_in)``, suited to sigmoid.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INIT_NAMES", "init_std", "normal_weight"]

# name -> gain g in std = sqrt(g / fan_in)
_GAINS = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}
INIT_NAMES = tuple(_GAINS)


def init_std(weight_init_std: float | str, fan_in: int) -> float:
    """The standard deviation for a weight matrix with ``fan_in`` inputs."""
    if isinstance(weight_init_std, str):
        gain = _GAINS.get(weight_init_std.lower())
        if gain is None:
            raise ValueError(
                f"weight_init_std: unknown initialiser {weight_init_std!r}; "
                f"use a number or one of {', '.join(INIT_NAMES)}"
            )
        return math.sqrt(gain / fan_in)
    std = float(weight_init_std)
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"weight_init_std must be a positive number, got {weight_init_std!r}")
    return std


def normal_weight(
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    weight_init_std: float | str,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """A (fan_in, fan_out) matrix drawn from N(0, std²), std chosen by :func:`init_std`."""
    std = init_std(weight_init_std, fan_in)
    weight = rng.standard_normal((fan_in, fan_out), dtype=np.dtype(dtype).type)
    weight *= std
    return weight
