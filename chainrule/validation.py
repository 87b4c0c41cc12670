"""The checks every node makes, one line each where a node makes them.

A node that gets the wrong thing raises one of chainrule's own errors, naming itself
(``Affine1``, ``MulLayer``), what it got and what it expected, instead of a NumPy error
from deep inside its arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import DTypeError, ShapeError, StateError
from chainrule.util import conv_output_size

__all__ = [
    "affine_params",
    "batch_rows",
    "batchnorm_params",
    "broadcast_shape",
    "check_dout",
    "check_flag",
    "check_real",
    "check_trained",
    "conv_params",
    "feature_rows",
    "image_batch",
    "node_name",
    "window_count",
    "window_output",
]


def node_name(node: object) -> str:
    """What an error calls a node: its ``name`` if it has one (``Affine1``), else its class
    (a string is taken as the name itself)."""
    if isinstance(node, str):
        return node
    return getattr(node, "name", None) or type(node).__name__


def check_real(node: object | str, what: str, value: Any) -> None:
    """Raise DTypeError unless ``value`` holds real numbers (bool, int or float)."""
    dtype = np.asarray(value).dtype
    if dtype.kind not in "biuf":
        raise DTypeError(f"{node_name(node)}: {what} must hold real numbers, got dtype {dtype}")


def check_flag(node: object | str, what: str, value: Any) -> None:
    """``value`` must be True or False: ``train_flg="False"``, labels or a ratio passed in
    its place would silently count as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise DTypeError(f"{node_name(node)}: {what} must be True or False, got {value!r}")


def check_trained(node: object, saved: Any) -> None:
    """backward differentiates the last forward with ``train_flg=True``; an inference
    forward (``train_flg=False``) saves nothing for it, and sets ``saved`` to None."""
    if saved is None:
        raise StateError(
            f"{node_name(node)}.backward needs a forward with train_flg=True before it "
            "(the last forward was inference, train_flg=False, or none ran)"
        )


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


def feature_rows(node: object, x: Any, features: int) -> np.ndarray:
    """``x`` (N, ...) as rows (N, features): a batch with ``features`` values per sample."""
    x = np.asarray(x)
    check_real(node, "input", x)
    if x.ndim < 2 or len(x) == 0 or x[0].size != features:
        raise ShapeError(
            f"{node_name(node)}: input of shape {x.shape} does not fit {features} features; "
            f"expected (N, {features}) or any (N, ...) with {features} values per sample"
        )
    return x.reshape(len(x), features)


def batchnorm_params(name: str, gamma: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    """``gamma`` and ``beta`` as 1-d real arrays of one shape, (features,)."""
    gamma, beta = np.asarray(gamma), np.asarray(beta)
    if gamma.ndim != 1 or beta.shape != gamma.shape:
        raise ShapeError(
            f"{name}: gamma and beta must be 1-d of one shape (features,); "
            f"got gamma {gamma.shape}, beta {beta.shape}"
        )
    check_real(name, "gamma", gamma)
    check_real(name, "beta", beta)
    return gamma, beta


def conv_params(name: str, W: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Filters ``W`` (FN, C, FH, FW) and biases ``b`` (FN,) as arrays, or a ShapeError."""
    W, b = np.asarray(W), np.asarray(b)
    if W.ndim != 4 or 0 in W.shape or b.shape != (W.shape[0],):
        raise ShapeError(
            f"{name}: W must be filters (FN, C, FH, FW) and b of shape (FN,); "
            f"got W {W.shape}, b {b.shape}"
        )
    check_real(name, "W", W)
    check_real(name, "b", b)
    return W, b


def window_count(name: str, what: str, value: Any, least: int) -> int:
    """A stride, padding or window size: an integer >= ``least``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name}: {what} must be an integer, got {value!r}")
    if value < least:
        raise ShapeError(f"{name}: {what} must be at least {least}, got {value}")
    return int(value)


def image_batch(node: object, x: Any, channels: int | None = None) -> np.ndarray:
    """``x`` as images (N, C, H, W), with ``channels`` channels when given (the filters')."""
    x = np.asarray(x)
    check_real(node, "input", x)
    name = node_name(node)
    if x.ndim != 4 or 0 in x.shape:
        hint = "; load_mnist(flatten=False) gives (N, 1, 28, 28)" if x.ndim == 2 else ""
        raise ShapeError(f"{name}: input must be images (N, C, H, W), got shape {x.shape}{hint}")
    if channels is not None and x.shape[1] != channels:
        raise ShapeError(
            f"{name}: input of shape {x.shape} has {x.shape[1]} channels, but the filters W "
            f"expect {channels}"
        )
    return x


def window_output(
    node: object, image: tuple[int, int], window: tuple[int, int], stride: int, pad: int, what: str
) -> tuple[int, int]:
    """``(out_h, out_w)``: the positions a ``window`` (h, w) takes on an ``image`` (H, W)
    padded by ``pad``, or a ShapeError when it does not fit even once."""
    (height, width), (window_h, window_w) = image, window
    if window_h > height + 2 * pad or window_w > width + 2 * pad:
        padded = f" padded by {pad}" if pad else ""
        raise ShapeError(
            f"{node_name(node)}: the {window_h}×{window_w} {what} is larger than the "
            f"input's {height}×{width} images{padded}"
        )
    return (
        conv_output_size(height, window_h, stride, pad),
        conv_output_size(width, window_w, stride, pad),
    )
