"""Stand-in for the book's ``common/util.py``.

``im2col``, ``col2im`` and ``smooth_curve`` are chainrule's. ``shuffle_dataset`` draws
its order from NumPy's global generator, as the book's, and ``conv_output_size``
returns the book's float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.util import col2im, im2col, smooth_curve

__all__ = ["col2im", "conv_output_size", "im2col", "np", "shuffle_dataset", "smooth_curve"]


def shuffle_dataset(x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``t`` in one random order, drawn by ``np.random.permutation``."""
    order = np.random.permutation(len(x))  # noqa: NPY002 (the book's generator)
    return np.asarray(x)[order], np.asarray(t)[order]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> float:
    """Window positions along an axis, as the book computes it (a float, fractional
    where the stride does not divide evenly)."""
    return (input_size + 2 * pad - filter_size) / stride + 1
