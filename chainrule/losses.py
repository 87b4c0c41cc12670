"""Softmax and cross-entropy, fused into one numerically stable node.

Shapes: logits ``x`` are (N, C), or (C,) for one sample; labels ``t`` are integer class
indices (N,) (or a single int), or one-hot / probability rows (N, C) (or (C,)).
The loss is the mean over the batch of ``-Σ_c t_c · log softmax(x)_c``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.arrays import Workspace, buffer, check_real, rows_index
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
    check_real("SoftmaxWithLoss", "logits", x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integer or boolean scores: softmax needs floats
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
        if t.dtype.kind not in "iu":  # signed or unsigned integers; not bool
            raise LabelError(
                f"SoftmaxWithLoss: class labels must be integers, got dtype {t.dtype} "
                "(for one-hot labels pass shape (N, C))"
            )
        labels = t.reshape(batch_size)
        _check_label_range(labels, num_classes)
        return x2, labels, False
    raise ShapeError(
        f"SoftmaxWithLoss: labels of shape {t.shape} do not match logits of shape {x.shape}; "
        f"expected ({batch_size},) class indices or ({batch_size}, {num_classes}) one-hot rows"
    )


def _check_label_range(labels: np.ndarray, num_classes: int) -> None:
    """Integer labels (N,) must lie in 0..num_classes-1."""
    # One pass: read as unsigned integers ("<i8" as "<u8"), negative labels are huge, so
    # the maximum catches labels out of range at either end.
    if np.maximum.reduce(labels.view(labels.dtype.str.replace("i", "u"))) >= num_classes:
        bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise LabelError(
            f"SoftmaxWithLoss: label {int(labels[bad])} at index {bad} "
            f"is outside 0..{num_classes - 1}"
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

    With ``workspace=`` (see :mod:`chainrule.layers`) both compute in reused buffers, on
    the transposed logits; ``y`` and the returned ``dx`` are then transposed views.
    """

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: Any, t: Any, *, workspace: Workspace | None = None) -> Any:
        x2, labels, one_hot = _as_batch(x, t)
        if workspace is not None:
            self._size_workspace(x2, workspace)
            loss = self._forward_transposed(x2, labels, one_hot, workspace)
            self.x_shape = np.shape(x)
            return loss
        log_y = log_softmax(x2)
        if one_hot:
            self.loss = -(labels * log_y).sum() / len(x2)
        else:
            self.loss = -log_y[np.arange(len(x2)), labels].sum() / len(x2)
        self.y, self.t, self.x_shape = np.exp(log_y), labels, np.shape(x)
        return self.loss

    def forward_into(self, x2: np.ndarray, t: np.ndarray, workspace: Workspace) -> Any:
        """:meth:`forward` with a workspace, unchecked but for the label values: for 2-d
        logits and labels of the shapes and dtypes of the last checked call with it."""
        if t.ndim == 1:
            _check_label_range(t, x2.shape[1])
        else:
            t = t.astype(x2.dtype, copy=False)
        self.x_shape = x2.shape
        return self._forward_transposed(x2, t, t.ndim == 2, workspace)

    def _size_workspace(self, x2: np.ndarray, workspace: Workspace) -> None:
        shape_T = x2.shape[::-1]
        buffer(workspace, "zT", shape_T, x2.dtype)
        buffer(workspace, "expT", shape_T, x2.dtype)
        rows_index(len(x2), workspace)

    def _forward_transposed(
        self, x2: np.ndarray, labels: np.ndarray, one_hot: bool, workspace: Workspace
    ) -> Any:
        """:meth:`forward`'s operations on the transposed logits (classes × batch).

        NumPy reduces a (batch, 10) array along its rows one short row at a time; on the
        transposed copy the same reductions run down the columns, vectorised over the
        batch, several times faster. ``y`` is then a transposed view, and so is the
        gradient that :meth:`backward` returns: BLAS takes either layout.
        """
        batch_size = len(x2)
        zT = workspace["zT"]
        np.copyto(zT, x2.T)
        # ufunc.reduce is what .max() and .sum() call, minus a Python layer per call.
        zT -= np.maximum.reduce(zT, axis=0)  # each sample's largest logit: exp() stays <= 1
        expT = np.exp(zT, out=workspace["expT"])
        zT -= np.log(np.add.reduce(expT, axis=0))  # zT is now log softmax, transposed
        if one_hot:
            self.loss = -(labels.T * zT).sum() / batch_size
        else:
            label_scores = zT[labels, workspace["rows"]]
            self.loss = -np.add.reduce(label_scores) / batch_size
        self.y = np.exp(zT, out=zT).T
        self.t = labels
        return self.loss

    def backward(self, dout: Any = 1.0, *, workspace: Workspace | None = None) -> np.ndarray:
        if self.y is None:
            raise StateError("SoftmaxWithLoss.backward was called before forward")
        check_real("SoftmaxWithLoss", "dout", dout)
        if np.ndim(dout) != 0:
            raise ShapeError(
                f"SoftmaxWithLoss.backward: dout must be a scalar (the loss is one), "
                f"got shape {np.shape(dout)}"
            )
        batch_size = len(self.y)
        if self.t.ndim == 2:
            # Rows of t that do not sum to 1 (soft labels) scale softmax's share of the gradient.
            dx = self.y * self.t.sum(axis=1, keepdims=True) - self.t
        elif workspace is None:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
        else:  # transposed, as the forward pass left y
            dxT = buffer(workspace, "dxT", self.y.shape[::-1], self.y.dtype)
            np.copyto(dxT, self.y.T)
            dxT[self.t, rows_index(batch_size, workspace)] -= 1
            dx = dxT.T
        # One pass applies both dout and 1/N (the training loop passes dout = learning rate).
        dx *= dout / batch_size
        return dx.reshape(self.x_shape)
