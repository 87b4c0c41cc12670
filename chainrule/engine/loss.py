"""The engine's SoftmaxWithLoss: the mean cross-entropy of the scores, and its gradient
``dout · (softmax − t) / N``, as :class:`chainrule.losses.SoftmaxWithLoss` computes them.

Softmax runs on the transposed scores (classes × batch): NumPy reduces down columns,
vectorised over the batch, faster than along rows of ten.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.buffers import Buffers

__all__ = ["SoftmaxLossKernel"]


class SoftmaxLossKernel:
    """Loss of scores (N, classes) against labels (N,) or one-hot rows (N, classes)."""

    def __init__(self) -> None:
        self._buf = Buffers()

    def forward(self, scores: np.ndarray, t: np.ndarray, one_hot: bool) -> Any:
        n, classes = scores.shape
        buf = self._buf
        zT = buf.get("zT", (classes, n), scores.dtype)
        np.copyto(zT, scores.T)
        zT -= np.maximum.reduce(zT, axis=0)  # each sample's largest score: exp() stays <= 1
        expT = np.exp(zT, out=buf.get("expT", (classes, n), scores.dtype))
        sums = np.add.reduce(expT, axis=0)
        zT -= np.log(sums)  # log softmax
        expT /= sums  # softmax
        self._expT, self._one_hot = expT, one_hot
        if one_hot:
            self._labels_T = t.T.astype(zT.dtype, copy=False)
            picked = np.multiply(self._labels_T, zT, out=buf.get("picked", zT.shape, zT.dtype))
            return -np.add.reduce(picked, axis=None) / n
        self._labels, self._rows = t, np.arange(n)
        return -np.add.reduce(zT[t, self._rows]) / n

    def backward(self, dout: float) -> np.ndarray:
        """The gradient of ``dout · loss`` with respect to the scores, (N, classes)."""
        expT = self._expT
        dzT = self._buf.get("dzT", expT.shape, expT.dtype)
        np.copyto(dzT, expT)
        if self._one_hot:
            dzT *= self._labels_T.sum(axis=0)  # rows of t not summing to 1 scale softmax's share
            dzT -= self._labels_T
        else:
            dzT[self._labels, self._rows] -= 1
        dzT *= dout / expT.shape[1]
        return dzT.T  # BLAS takes either layout
