"""Softmax and cross-entropy, fused into one numerically stable node.

Shapes: logits ``x`` are (N, C), or (C,) for one sample; labels ``t`` are integer class
indices (N,) (or a single int), or one-hot / probability rows (N, C) (or (C,)).
The loss is the mean over the batch of ``-Σ_c t_c · log softmax(x)_c``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import LabelError, ShapeError, StateError

__all__ = ["SoftmaxWithLoss", "cross_entropy_error", "log_softmax", "softmax"]


def log_softmax(x: np.ndarray) -> np.ndarray:
    """``log softmax(x)`` along the last axis, computed without overflow."""
    # Subtracting the row maximum leaves softmax unchanged and keeps every exp() <= 1.
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax along the last axis; rows sum to 1. Stable for logits of any size."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _as_batch(x: Any, t: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate logits and labels; return (x as (N, C), t as (N,) ints or (N, C), is_one_hot)."""
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ShapeError(
            f"SoftmaxWithLoss: logits must be (N, C) or (C,) and non-empty, got {x.shape}"
        )
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    batch_size, num_classes = x2.shape
    t = np.asarray(t)
    if t.shape in ((batch_size, num_classes), (num_classes,)) and t.ndim == x.ndim:
        if not np.issubdtype(t.dtype, np.number) or np.issubdtype(t.dtype, np.complexfloating):
            raise LabelError(
                f"SoftmaxWithLoss: one-hot labels must be numeric, got dtype {t.dtype}"
            )
        return x2, t.reshape(batch_size, num_classes).astype(x2.dtype, copy=False), True
    if t.shape == (batch_size,) or (x.ndim == 1 and t.ndim == 0):
        if t.dtype == np.bool_ or not np.issubdtype(t.dtype, np.integer):
            raise LabelError(
                f"SoftmaxWithLoss: class labels must be integers, got dtype {t.dtype} "
                "(for one-hot labels pass shape (N, C))"
            )
        labels = t.reshape(batch_size)
        if labels.min() < 0 or labels.max() >= num_classes:
            bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
            raise LabelError(
                f"SoftmaxWithLoss: label {int(labels[bad])} at index {bad} "
                f"is outside 0..{num_classes - 1}"
            )
        return x2, labels, False
    raise ShapeError(
        f"SoftmaxWithLoss: labels of shape {t.shape} do not match logits of shape {x.shape}; "
        f"expected ({batch_size},) class indices or ({batch_size}, {num_classes}) one-hot rows"
    )


def cross_entropy_error(x: Any, t: Any) -> Any:
    """Mean cross-entropy of softmax(``x``) against labels ``t``; ``x`` holds logits."""
    return SoftmaxWithLoss().forward(x, t)


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy, as one node with the closed-form backward.

    ``forward(x, t)`` returns the mean loss over the batch. ``backward(dout=1.0)`` returns
    ``dx = dout · (softmax(x)·Σ_c t_c − t) / N`` which is ``dout · (y − t) / N`` for one-hot
    or integer labels. The log-softmax form needs no ``+1e-7`` inside the log: the book's
    guard against log(0) biases the loss, and with it the gradient check.
    """

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: Any, t: Any) -> Any:
        x2, labels, one_hot = _as_batch(x, t)
        log_y = log_softmax(x2)
        if one_hot:
            self.loss = -(labels * log_y).sum() / len(x2)
        else:
            self.loss = -log_y[np.arange(len(x2)), labels].mean()
        self.y, self.t, self.x_shape = np.exp(log_y), labels, np.shape(x)
        return self.loss

    def backward(self, dout: Any = 1.0) -> np.ndarray:
        if self.y is None:
            raise StateError("SoftmaxWithLoss.backward was called before forward")
        batch_size = len(self.y)
        if self.t.ndim == 2:
            # Rows of t that do not sum to 1 (soft labels) scale softmax's share of the gradient.
            dx = self.y * self.t.sum(axis=1, keepdims=True) - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
        dx *= dout / batch_size
        return dx.reshape(self.x_shape)
