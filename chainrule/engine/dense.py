"""The engine's kernels for the layers that do not slide windows: Affine, Relu, Sigmoid,
Dropout and BatchNormalization, each the numbers of its layer in reused buffers.

A kernel's ``forward(x, train)`` returns its output, an array of its own buffers;
``backward(dy, need_dx)`` takes the gradient of that output and returns the gradient of
its input (None when ``need_dx`` is False). ``dy`` belongs to the engine: a kernel may
overwrite it, and return it as its ``dx``. Gradients of parameters go to ``grads``
(``{"W": dW, "b": db}``, by the layer's attribute names). ``out_shape`` says what a
forward of that input shape returns, or None where the layer would refuse it (the step
then leaves the batch to the layers, whose errors say what is wrong).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.blas import matmul
from chainrule.engine.buffers import Buffers, channels_last

__all__ = [
    "AffineKernel",
    "BatchNormKernel",
    "DropoutKernel",
    "Kernel",
    "ReluKernel",
    "SigmoidKernel",
    "draw_uniform",
    "relu_backward_from_output",
    "uniform_dtype",
]


class Kernel:
    """What every kernel has: its layer, and one set of buffers for training and one for
    inference (so that evaluating between steps leaves the step's arrays alone)."""

    def __init__(self, layer: Any, *, in_place: bool = False) -> None:
        self.layer = layer
        self.in_place = in_place  # may write its output over its input (never the user's)
        self.grads: dict[str, np.ndarray] = {}
        self._train, self._infer = Buffers(), Buffers()

    def buffers(self, train: bool) -> Buffers:
        return self._train if train else self._infer

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        return shape  # element-wise

    def chunked_multiplies(self, shape: tuple[int, ...]) -> int:
        """The multiply-adds of a forward of that input shape in products the kernel
        computes in chunks of the batch, each layer waiting for its last chunk (0 here:
        an Affine's product is shared in blocks, which need no split batch)."""
        return 0


class AffineKernel(Kernel):
    """``Y = X·W + b``; X (N, ...) flattened as the layer flattens it. Images stored
    channels last are not reordered: W's rows are, into a buffer, which is far smaller."""

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        fan_in, fan_out = self.layer.W.shape
        if len(shape) < 2 or math.prod(shape[1:]) != fan_in:
            return None
        return (shape[0], fan_out)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, W = self.buffers(train), self.layer.W
        n = len(x)
        if channels_last(x):  # rows (h, w, c) against W's rows put in that order
            _, c, h, w = x.shape
            rows = x.transpose(0, 2, 3, 1).reshape(n, -1)
            weights = buf.get("W", W.shape, W.dtype)
            np.copyto(weights.reshape(h, w, c, -1), W.reshape(c, h, w, -1).transpose(1, 2, 0, 3))
        else:
            rows, weights = x.reshape(n, -1), W
        y = matmul(rows, weights, out=buf.get("y", (n, W.shape[1]), W.dtype))
        y += self.layer.b
        if train:
            self._rows, self._weights, self._x = rows, weights, x
        return y

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        buf, W, rows = self._train, self.layer.W, self._rows
        dW = buf.get("dW", W.shape, W.dtype)
        db = buf.get("db", self.layer.b.shape, W.dtype)
        ones = buf.get("ones", (len(rows),), W.dtype, fill=1)
        if self._weights is W:
            matmul(rows.T, dy, out=dW)
        else:  # the gradient of the reordered rows, put back in W's order
            _, c, h, w = self._x.shape
            dW_last = matmul(rows.T, dy, out=buf.get("dW_last", W.shape, W.dtype))
            np.copyto(dW.reshape(c, h, w, -1), dW_last.reshape(h, w, c, -1).transpose(2, 0, 1, 3))
        matmul(ones, dy, out=db)  # Σ_rows dY, by BLAS
        self.grads = {"W": dW, "b": db}
        if not need_dx:
            return None
        dx = matmul(dy, self._weights.T, out=buf.get("dx", rows.shape, W.dtype))
        if self._weights is W:
            return dx.reshape(self._x.shape)
        n, c, h, w = self._x.shape
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _live_mask(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Into int8 ``keep``: 0 where ``values`` <= 0, −1 (all ones) elsewhere (NaN too)."""
    np.less_equal(values, 0, out=keep)  # 1 where dead
    return np.subtract(keep, 1, out=keep)  # then 0; −1 elsewhere


def _zero_where_dead(dy: np.ndarray, keep: np.ndarray) -> None:
    """dy's bits and-ed with the int8 mask, which widens to dy's width (−1 to all ones):
    +0 where it is 0, dy unchanged elsewhere. (A mask of a byte a value is a quarter of
    float32's to write and read.)"""
    bits = dy.view(np.dtype(f"i{dy.itemsize}"))
    np.bitwise_and(bits, keep, out=bits)


def relu_backward_from_output(dy: np.ndarray, y: np.ndarray, buf: Buffers) -> None:
    """Set dy (float, its last axis contiguous) to +0 where the ReLU's output y is <= 0,
    which is where its input was (NaN passes, as in the layer), as :class:`ReluKernel`
    does."""
    _zero_where_dead(dy, _live_mask(y, buf.front("keep", y.shape, np.int8)))


class ReluKernel(Kernel):
    """``y = max(x, 0)``; backward sets dy to +0 where x <= 0, as the layer's
    ``dout[mask] = 0`` (not dy · mask: inf · 0 is NaN, where the layer gives 0): dy's bits
    and-ed with a mask of all ones where x > 0 (or NaN) and zeros elsewhere, which runs
    far faster than a masked copy."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf = self.buffers(train)
        if train:
            self._keep = _live_mask(x, buf.like("keep", x, np.int8))
        y = x if self.in_place else buf.like("y", x)
        return np.maximum(x, 0, out=y)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        if dy.dtype.kind != "f":
            np.copyto(dy, 0, where=self._keep == 0)
            return dy
        _zero_where_dead(dy, self._keep)
        return dy


class SigmoidKernel(Kernel):
    """``y = exp(−log(1 + exp(−x)))``, the layer's stable sigmoid; dx = dy·y·(1 − y)."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf = self.buffers(train)
        y = np.negative(x, out=buf.like("y", x))
        np.logaddexp(0.0, y, out=y)
        np.negative(y, out=y)
        np.exp(y, out=y)
        if train:
            self._y = y
        return y

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        y = self._y
        local = np.subtract(1.0, y, out=self._train.like("local", y))
        local *= y
        return np.multiply(dy, local, out=dy)


class DropoutKernel(Kernel):
    """The book's dropout: the layer's own generator draws the mask of each training
    forward, exactly as the layer would (the same draws, in the same order); inference
    scales by ``1 − dropout_ratio``. When the step splits the batch, it draws the whole
    batch's numbers before the parts run and hands each kernel its part (``draws``)."""

    draws: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, layer = self.buffers(train), self.layer
        y = x if self.in_place else buf.like("y", x)
        if not train:
            return np.multiply(x, 1.0 - layer.dropout_ratio, out=y)
        draws = self.draws
        if draws is None:
            draws = buf.get("draws", x.shape, uniform_dtype(x.dtype))
            draw_uniform(layer, draws)
        self._mask = np.greater_equal(
            draws, layer.dropout_ratio, out=buf.get("mask", x.shape, np.bool_)
        )
        return np.multiply(x, self._mask, out=y)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        return np.multiply(dy, self._mask, out=dy) if need_dx else None


def uniform_dtype(dtype: np.dtype) -> type:
    """The dtype of the numbers ``rng.random(x.shape, dtype)`` gives the layer for input
    of ``dtype``: float32 for float32."""
    return np.float32 if dtype == np.float32 else np.float64


def draw_uniform(layer: Any, out: np.ndarray) -> None:
    """The draws of a Dropout layer's mask for one training forward, as it makes them."""
    layer.rng.random(dtype=out.dtype.type, out=out)


class BatchNormKernel(Kernel):
    """Batch normalisation over the batch of each of the D = x[0].size features, as the
    layer: training moves its running statistics as the layer's forward does."""

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        if len(shape) < 2 or math.prod(shape[1:]) != len(self.layer.gamma):
            return None
        return shape

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, layer = self.buffers(train), self.layer
        n, dtype = len(x), layer.gamma.dtype
        if x.flags.c_contiguous:
            rows = x.reshape(n, -1)
        else:  # the features in the layer's (C, H, W) order
            rows = buf.get("x", x.shape, dtype)
            np.copyto(rows, x)
            rows = rows.reshape(n, -1)
        _start_running_statistics(layer)
        xn = buf.get("xn", rows.shape, dtype)
        if train:
            mu = rows.mean(axis=0)
            xc = np.subtract(rows, mu, out=xn)
            var = np.multiply(xc, xc, out=buf.get("square", rows.shape, dtype)).mean(axis=0)
            self._std = np.sqrt(var + layer.eps)
            np.divide(xc, self._std, out=xn)
            layer.running_mean = layer.momentum * layer.running_mean + (1 - layer.momentum) * mu
            layer.running_var = layer.momentum * layer.running_var + (1 - layer.momentum) * var
            self._xn, self._shape = xn, x.shape
        else:
            np.subtract(rows, layer.running_mean, out=xn)
            xn /= np.sqrt(layer.running_var + layer.eps)
        y = np.multiply(layer.gamma, xn, out=buf.get("y", rows.shape, dtype))
        y += layer.beta
        return y.reshape(x.shape)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        buf, xn, gamma = self._train, self._xn, self.layer.gamma
        dy = np.reshape(dy, xn.shape)
        product = np.multiply(xn, dy, out=buf.get("product", xn.shape, xn.dtype))
        self.grads = {
            "gamma": np.sum(product, axis=0, out=buf.get("dgamma", gamma.shape, xn.dtype)),
            "beta": np.sum(dy, axis=0, out=buf.get("dbeta", gamma.shape, xn.dtype)),
        }
        if not need_dx:
            return None
        dxn = np.multiply(gamma, dy, out=buf.get("dxn", xn.shape, xn.dtype))
        np.multiply(dxn, xn, out=product)
        # dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ, the means over the batch
        spread = np.multiply(xn, product.mean(axis=0), out=product)
        dxn -= dxn.mean(axis=0)
        dxn -= spread
        dxn /= self._std
        return dxn.reshape(self._shape)


def _start_running_statistics(layer: Any) -> None:
    """Mean 0 and variance 1 where the layer has none yet, as its first forward makes."""
    dtype = np.result_type(layer.gamma.dtype, np.float32)
    if layer.running_mean is None:
        layer.running_mean = np.zeros(len(layer.gamma), dtype)
    if layer.running_var is None:
        layer.running_var = np.ones(len(layer.gamma), dtype)
