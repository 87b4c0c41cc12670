"""Softmax and cross-entropy, fused into one numerically stable node.

Shapes: logits ``x`` are (N, C), or (C,) for one sample; labels ``t`` are integer class
indices (N,) (or a single int, or a column (N, 1) of them, as the book's chapter 7 gradient
check passes one label), or one-hot / probability rows (N, C) (or (C,)).
The loss is the mean over the batch of ``-Σ_c t_c · log softmax(x)_c``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from chainrule.errors import LabelError, ShapeError
from chainrule.validation import check_dout, check_real

__all__ = [
    "SoftmaxWithLoss",
    "as_batch",
    "check_label_range",
    "class_indices",
    "cross_entropy_error",
    "log_softmax",
    "softmax",
]


def log_softmax(x: np.ndarray) -> np.ndarray:
    """``log softmax(x)`` along the last axis, computed without overflow."""
    # Subtracting the row maximum leaves softmax unchanged and keeps every exp() <= 1.
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax along the last axis; rows sum to 1. Stable for logits of any size."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def as_batch(
    x: Any, t: Any, *, node: str = "SoftmaxWithLoss", what: str = "logits"
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Check scores and labels; return (x as (N, C), t as (N,) ints or (N, C), is_one_hot).

    ``node`` and ``what`` are how an error names the caller and its scores.
    """
    x = np.asarray(x)
    check_real(node, what, x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integer or boolean scores: softmax needs floats
    if x.ndim not in (1, 2) or x.size == 0:
        raise ShapeError(f"{node}: {what} must be (N, C) or (C,) and non-empty, got {x.shape}")
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    batch_size, num_classes = x2.shape
    t = np.asarray(t)
    if t.shape in ((batch_size, num_classes), (num_classes,)) and t.ndim == x.ndim:
        if not np.issubdtype(t.dtype, np.number) or np.issubdtype(t.dtype, np.complexfloating):
            raise LabelError(f"{node}: one-hot labels must be numeric, got dtype {t.dtype}")
        return x2, t.reshape(batch_size, num_classes).astype(x2.dtype, copy=False), True
    if t.shape in ((batch_size,), (batch_size, 1)) or (x.ndim == 1 and t.ndim == 0):
        if t.dtype.kind not in "iu":  # signed or unsigned integers; not bool
            raise LabelError(
                f"{node}: class labels must be integers, got dtype {t.dtype} "
                "(for one-hot labels pass shape (N, C))"
            )
        labels = t.reshape(batch_size)
        check_label_range(labels, num_classes, node)
        return x2, labels, False
    raise ShapeError(
        f"{node}: labels of shape {t.shape} do not match {what} of shape {x.shape}; "
        f"expected ({batch_size},) class indices or ({batch_size}, {num_classes}) one-hot rows"
    )


def class_indices(t: Any, num_classes: int) -> np.ndarray:
    """Labels as class indices (N,): one-hot rows (N, C) by their largest entry, a column
    (N, 1) of indices flattened, indices (N,) as they are."""
    t = np.asarray(t)
    return t.argmax(axis=1) if t.ndim == 2 and t.shape[1] == num_classes else t.reshape(-1)


@functools.cache
def _unsigned(dtype: np.dtype) -> np.dtype:
    """The unsigned integer type of ``dtype``'s width and byte order (``<i8`` → ``<u8``)."""
    return np.dtype(dtype.str.replace("i", "u"))


def check_label_range(labels: np.ndarray, num_classes: int, node: str = "SoftmaxWithLoss") -> None:
    """Integer labels (N,) must lie in 0..num_classes-1."""
    # One pass: read as unsigned integers ("<i8" as "<u8"), negative labels are huge, so
    # the maximum catches labels out of range at either end.
    if np.maximum.reduce(labels.view(_unsigned(labels.dtype))) >= num_classes:
        bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise LabelError(
            f"{node}: label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}"
        )


def cross_entropy_error(y: Any, t: Any) -> Any:
    """The book's cross-entropy: mean ``-Σ t·log y`` of probabilities ``y`` against ``t``.

    ``y`` holds probabilities (softmax's output), as in the book: a learner's
    ``cross_entropy_error(softmax(x), t)`` applies softmax once. ``t`` is integer labels
    (N,) or one-hot rows (N, C). For logits, :class:`SoftmaxWithLoss` computes the same
    loss without ever taking the log of a rounded probability.
    """
    y2, labels, one_hot = as_batch(y, t, node="cross_entropy_error", what="probabilities")
    # The book adds 1e-7 inside the log against log(0); the smallest positive float guards
    # as well, and changes no probability that is not already 0.
    log_y = np.log(np.maximum(y2, np.finfo(y2.dtype).tiny))
    picked = labels * log_y if one_hot else log_y[np.arange(len(y2)), labels]
    return -picked.sum() / len(y2)


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy, one node with the closed-form backward.

    ``forward(x, t)`` returns the mean loss over the batch. ``backward(dout=1)`` returns
    ``dx = dout · (y − t) / N``, with ``y = softmax(x)``. Unlike the book's, it computes a
    log-softmax: no overflow for large logits, and no ``+1e-7`` inside the log (that guard
    biases the loss, and with it the gradient check); and it honours ``dout``.
    """

    symbol, formula, local = "Softmax\nwith Loss", "L = −Σ t · log softmax(x) / N", ("(y − t) / N",)

    def __init__(self) -> None:
        self.loss = None
        self.y = None
        self.t = None
        self.x_shape = None

    def forward(self, x: Any, t: Any) -> Any:
        x2, self.t, one_hot = as_batch(x, t)
        self.x_shape = np.shape(x)
        log_y = log_softmax(x2)
        picked = self.t * log_y if one_hot else log_y[np.arange(len(x2)), self.t]
        self.loss = -picked.sum() / len(x2)
        self.y = np.exp(log_y)
        return self.loss

    def backward(self, dout: Any = 1) -> np.ndarray:
        check_dout(self, dout, None if self.y is None else ())
        batch_size = len(self.y)
        if self.t.ndim == 2:
            # Rows of t that do not sum to 1 (soft labels) scale softmax's share of it.
            dx = self.y * self.t.sum(axis=1, keepdims=True) - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
        return (dx * (dout / batch_size)).reshape(self.x_shape)
