"""How numbers, shapes and arrays are written in the trace and the pictures.

Scalars are written in full but compactly (``format(x, ".6g")``: 220, not
220.00000000000003); small arrays whole, nested as NumPy nests them (a vector of at most
four entries ``[7, 2]``; a matrix of up to 4×4 by rows, ``[[1, 2], [3, 4]]``, its
columns lined up), so a learner can check them by hand; other arrays by their shape and
min, mean and max. :mod:`chainrule.explain` and :mod:`chainrule.viz.diagram` both write
values through these functions, so a number reads the same in a trace and in a picture.
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
    "is_matrix",
    "is_scalar",
    "is_short",
    "matrix_rows",
    "printable",
    "summarize",
]

TINY = 4  # arrays of at most this many entries are written out in full
SMALL_SIDE = 4  # and arrays of two or more axes none longer than this (a 4×4 matrix)


def is_scalar(x: Any) -> bool:
    """True for a number or a 0-d array."""
    return np.ndim(x) == 0


def is_short(x: Any) -> bool:
    """True for what :func:`summarize` writes out in full: a scalar, a vector of at most
    :data:`TINY` entries, or an array of two or more axes none longer than
    :data:`SMALL_SIDE` (up to 4×4 for a matrix)."""
    shape = np.shape(x)
    return np.size(x) <= TINY or (len(shape) >= 2 and max(shape) <= SMALL_SIDE)


def is_matrix(x: Any) -> bool:
    """True for a small matrix of two rows or more, which a trace writes row under row."""
    return np.ndim(x) == 2 and is_short(x) and np.shape(x)[0] >= 2


def matrix_rows(x: Any, digits: int = 3) -> list[str]:
    """A small 2-d array's rows, ``["[1.4, 3.2]", "[3.2, 7.7]"]``, each column right-aligned
    to its widest entry so the rows line up."""
    cells = [[format_number(v, digits) for v in row] for row in np.asarray(x)]
    widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
    return ["[" + ", ".join(c.rjust(w) for c, w in zip(row, widths)) + "]" for row in cells]


def _nested(a: np.ndarray, digits: int) -> str:
    """``a``'s entries nested as NumPy nests them: ``[[1, 2], [3, 4]]``."""
    if a.ndim == 1:
        return "[" + ", ".join(format_number(v, digits) for v in a) + "]"
    if a.ndim == 2 and a.shape[1] > 0:
        return "[" + ", ".join(matrix_rows(a, digits)) + "]"
    return "[" + ", ".join(_nested(part, digits) for part in a) + "]"


# C0 controls (but the line break), DEL and C1 controls -> a visible stand-in: the
# control pictures U+2400 … for C0 and DEL, U+FFFD for C1, lone surrogates and the two
# non-characters XML forbids. A NUL stops Graphviz; any of them makes an SVG invalid XML.
_PRINTABLE = {c: 0x2400 + c for c in range(0x20) if c != 0x0A}
_PRINTABLE[0x7F] = 0x2421
_PRINTABLE.update({c: 0xFFFD for c in (*range(0x80, 0xA0), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF)})


def printable(text: str) -> str:
    """``text`` with each control character (but the line break) shown as its picture
    (``␀`` for NUL, ``␛`` for ESC), and what no XML file may hold as ``�``."""
    return text.translate(_PRINTABLE)


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
    """An array in a few characters: its entries if small, else min, mean and max.

    ``[7, 2]`` for a 2-vector, ``[[1, 2], [3, 4]]`` for a 2×2 matrix (see
    :func:`is_short`); ``min -0.0123  mean 0.000412  max 0.0456`` otherwise; for a larger
    boolean array (a mask), how many entries are 1. A scalar is :func:`format_number` of it.
    """
    if is_scalar(x):
        return format_number(x)
    a = np.asarray(x)
    if a.size == 0:
        return "empty"
    if is_short(a):
        return _nested(a, digits)
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
    """A scalar's value, or an array's shape and summary: ``(2×50) min …  mean …  max …``,
    ``(2×2) [[1, 2], [3, 4]]``. A tiny vector is its entries alone, ``[3, 7]``: they show
    its shape.
    """
    if is_scalar(x) or (np.ndim(x) == 1 and is_short(x)):
        return summarize(x)
    return f"({format_shape(np.shape(x))}) {summarize(x)}"
