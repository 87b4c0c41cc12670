"""How numbers, shapes and arrays are written in the trace and the pictures.

Scalars are written in full but compactly (``format(x, ".6g")``: 220, not
220.00000000000003); arrays by their shape and a short summary (their entries when there
are at most four, else min, mean and max). :mod:`chainrule.explain` and
:mod:`chainrule.viz.graph` both write values through these functions, so a number reads
the same in a trace and in a picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "TINY",
    "array_stats",
    "describe",
    "format_number",
    "format_shape",
    "is_scalar",
    "is_short",
    "summarize",
]

TINY = 4  # arrays of at most this many entries are written out in full


def is_scalar(x: Any) -> bool:
    """True for a number or a 0-d array."""
    return np.ndim(x) == 0


def is_short(x: Any) -> bool:
    """True for what :func:`summarize` writes out in full: a scalar or a tiny array."""
    return np.size(x) <= TINY


def format_number(x: Any, digits: int = 6) -> str:
    """A scalar, compactly: ``220`` for 220.00000000000003, ``2.2``, ``1e-05``, ``7``.

    Booleans are written ``1`` and ``0``: here they are local derivatives (ReLU's
    ``1[x > 0]``), which are numbers.
    """
    if isinstance(x, np.ndarray):
        x = x.item()
    if isinstance(x, (bool, np.bool_)):
        return str(int(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        text = format(float(x), f".{digits}g")
    except (TypeError, ValueError):
        return str(x)
    # -0.0 is a rounding artefact of the gradient, not something to teach.
    return "0" if text == "-0" else text


def format_shape(shape: Sequence[int]) -> str:
    """A shape as the book writes it: ``2×784``; ``50`` for a vector; ``scalar`` for ()."""
    return "×".join(str(n) for n in shape) if len(shape) else "scalar"


def summarize(x: Any, digits: int = 3) -> str:
    """An array in a few characters: its entries if tiny, else min, mean and max.

    ``[7, 2]`` for a 2-vector; ``min -0.0123  mean 0.000412  max 0.0456`` otherwise; for a
    boolean array (a mask), how many entries are 1. A scalar is :func:`format_number` of it.
    """
    if is_scalar(x):
        return format_number(x)
    a = np.asarray(x)
    if a.size == 0:
        return "empty"
    if is_short(a):
        return "[" + ", ".join(format_number(v, digits) for v in a.ravel()) + "]"
    if a.dtype == np.bool_:
        return f"1 at {np.count_nonzero(a)} of {a.size} entries, 0 elsewhere"
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        return f"{a.dtype} array"
    lo, mean, hi = array_stats(a)
    return (
        f"min {format_number(lo, digits)}  mean {format_number(mean, digits)}"
        f"  max {format_number(hi, digits)}"
    )


def array_stats(x: Any) -> tuple[float, float, float]:
    """``(min, mean, max)`` of a non-empty numeric array, as floats.

    A mean that is only rounding noise (below 1e-12 of the largest magnitude, as for the
    softmax gradient, whose rows sum to 0 exactly) is returned as 0.
    """
    # float64 for the mean: a float32 sum over many entries loses digits.
    a = np.asarray(x, dtype=np.float64)
    lo, hi, mean = float(a.min()), float(a.max()), float(a.mean())
    if abs(mean) <= 1e-12 * max(abs(lo), abs(hi)):
        mean = 0.0
    return lo, mean, hi


def describe(x: Any) -> str:
    """A scalar's value, or an array's shape and summary: ``(2×50) min …  mean …  max …``.

    A tiny vector is its entries alone, ``[3, 7]``: they show its shape.
    """
    if is_scalar(x) or (np.ndim(x) == 1 and is_short(x)):
        return summarize(x)
    return f"({format_shape(np.shape(x))}) {summarize(x)}"
