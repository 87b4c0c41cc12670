"""The checks every node makes, one line each where a node makes them.

A node that gets the wrong thing raises one of chainrule's own errors, naming itself
(``Affine1``, ``MulLayer``), what it got and what it expected, instead of a NumPy error
from deep inside its arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import DTypeError, ShapeError, StateError

__all__ = [
    "affine_params",
    "batch_rows",
    "broadcast_shape",
    "check_dout",
    "check_real",
    "node_name",
]


def node_name(node: object) -> str:
    """What an error calls a node: its ``name`` if it has one (``Affine1``), else its class."""
    return getattr(node, "name", None) or type(node).__name__


def check_real(node: object | str, what: str, value: Any) -> None:
    """Raise DTypeError unless ``value`` holds real numbers (bool, int or float)."""
    dtype = np.asarray(value).dtype
    if dtype.kind not in "biuf":
        name = node if isinstance(node, str) else node_name(node)
        raise DTypeError(f"{name}: {what} must hold real numbers, got dtype {dtype}")


def broadcast_shape(node: object, x: Any, y: Any) -> tuple[int, ...]:
    """The shape of ``x ∘ y`` after broadcasting, checking both inputs first."""
    check_real(node, "x", x)
    check_real(node, "y", y)
    try:
        return np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError:
        raise ShapeError(
            f"{node_name(node)}: x of shape {np.shape(x)} and y of shape {np.shape(y)} "
            "do not broadcast"
        ) from None


def check_dout(node: object, dout: Any, expected: Any) -> None:
    """``dout`` must be real and of the forward output's shape.

    ``expected`` is that shape, or an array of it that forward saved (a mask, an output);
    None while the node has not run forward, when backward has nothing to work with.
    """
    name = node_name(node)
    if expected is None:
        raise StateError(f"{name}.backward was called before forward")
    if not isinstance(expected, tuple):
        expected = np.shape(expected)
    check_real(node, "dout", dout)
    if np.shape(dout) != tuple(expected):
        raise ShapeError(f"{name}.backward: dout has shape {np.shape(dout)}, expected {expected}")


def affine_params(name: str, W: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``W`` (in, out) and ``b`` (out,) as arrays, or a ShapeError naming the node."""
    W, b = np.asarray(W), np.asarray(b)
    if W.ndim != 2 or b.shape != (W.shape[1],):
        raise ShapeError(
            f"{name}: W must be 2-d (in, out) and b of shape (out,); got W {W.shape}, b {b.shape}"
        )
    check_real(name, "W", W)
    check_real(name, "b", b)
    return W, b


def batch_rows(node: object, x: Any, w_shape: tuple[int, int]) -> np.ndarray:
    """``x`` as a 2-d batch (N, in) for a W of shape (in, out): one sample (in,) is a batch
    of one, and any (N, d1, d2, ...) with ``in`` values per sample is flattened, as the
    book's Affine does for images."""
    fan_in = w_shape[0]
    x = np.asarray(x)
    check_real(node, "input", x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ShapeError(
            f"{node_name(node)}: got an empty batch or a scalar, input shape {x.shape}"
        )
    rows = x.reshape(1, -1) if x.ndim == 1 else x.reshape(len(x), -1)
    if rows.shape[1] != fan_in:
        raise ShapeError(
            f"{node_name(node)}: input of shape {x.shape} does not fit W of shape "
            f"{tuple(w_shape)}; expected (N, {fan_in}) or any (N, ...) with {fan_in} values "
            "per sample"
        )
    return rows
