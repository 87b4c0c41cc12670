"""Stand-in for the book's ``common/gradient.py``: ``numerical_gradient(f, x)``.

The book's ``f`` takes the array being perturbed (its scripts pass ``lambda W: loss``);
chainrule's :func:`chainrule.gradcheck.numerical_gradient` calls ``f()`` with no
argument. Both perturb ``x`` in place by ``h = 1e-4``, one entry at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import gradcheck

__all__ = ["np", "numerical_gradient"]


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar ``f(x)`` with respect to each entry of ``x``."""
    return gradcheck.numerical_gradient(lambda: f(x), x)
