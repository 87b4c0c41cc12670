"""The engine's kernels for the layers that slide windows: Convolution and max Pooling
(the contract is :mod:`chainrule.engine.dense`'s).

Images travel between kernels as (N, C, H, W) arrays stored channels last, (N, H, W, C)
in memory: the order in which a convolution's product writes them, so no kernel
transposes a batch. A convolution is one product of its filters with ``col``, the
windows of the padded images laid out a row per filter entry (c, fh, fw) and a column
per output position, plus a row of ones that carries the bias (its gradient comes out of
the same product as dW's).

A convolution followed by a pooling whose stride is its P×P window (the book's 2×2) is
one kernel: it computes the convolution's outputs in the order the pooling reads them,
first every window's top-left position (of all images), then every window's next, so
that pooling is the maximum of P·P contiguous blocks; positions no window covers (an odd
last row or column) are not computed at all. Backward sends each window's gradient to
its first maximum, in the window's row-major order, as the layer's argmax does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule.blas import matmul
from chainrule.engine.buffers import Buffers, channels_last
from chainrule.engine.dense import Kernel

__all__ = ["ConvKernel", "PoolKernel"]


class ConvKernel(Kernel):
    """A Convolution layer, with the Pooling after it when ``pool`` is given (its stride
    equal to its square window, no padding)."""

    def __init__(self, layer: Any, pool: Any = None) -> None:
        super().__init__(layer)
        self.pool = pool

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        FN, C, FH, FW = self.layer.W.shape
        if len(shape) != 4 or shape[1] != C:
            return None
        n, _, h, w = shape
        oh, ow = _positions(h, w, FH, FW, self.layer.stride, self.layer.pad)
        if self.pool is not None:
            oh, ow = oh // self.pool.stride, ow // self.pool.stride
        return (n, FN, oh, ow) if min(oh, ow) >= 1 else None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, W = self.buffers(train), self.layer.W
        FN, C, FH, FW = W.shape
        K, n = C * FH * FW, len(x)
        xp = _padded(x, self.layer.pad, 0.0, buf)
        oh, ow = _positions(x.shape[2], x.shape[3], FH, FW, self.layer.stride, self.layer.pad)
        P = None if self.pool is None else self.pool.stride
        grid = (n, oh, ow) if P is None else (P, P, n, oh // P, ow // P)
        col = buf.get("col", (K + 1, int(np.prod(grid))), W.dtype, fill=1)
        np.copyto(
            col[:K].reshape(C, FH, FW, *grid), _windows(xp, FH, FW, self.layer.stride, P, grid)
        )
        weights = buf.get("weights", (K + 1, FN), W.dtype)
        np.copyto(weights[:K], W.reshape(FN, K).T)
        weights[K] = self.layer.b
        out = matmul(col.T, weights, out=buf.get("out", (col.shape[1], FN), W.dtype))
        if train:
            self._x, self._xp, self._col, self._weights, self._out, self._grid = (
                x,
                xp,
                col,
                weights,
                out,
                grid,
            )
        if P is None:
            return out.reshape(n, oh, ow, FN).transpose(0, 3, 1, 2)
        blocks = out.reshape(P * P, -1)  # block k: each window's k-th position
        pooled = buf.get("pooled", blocks.shape[1:], W.dtype)
        np.copyto(pooled, blocks[0])
        for block in blocks[1:]:
            np.maximum(pooled, block, out=pooled)
        if train:
            self._pooled = pooled
        return pooled.reshape(grid[2], grid[3], grid[4], FN).transpose(0, 3, 1, 2)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        buf, W, out = self._train, self.layer.W, self._out
        FN, C, FH, FW = W.shape
        K = C * FH * FW
        if self.pool is None:
            dout = _rows_channels_last(dy, buf, "dy")
        else:
            dout = self._unpool(_rows_channels_last(dy, buf, "dy").reshape(-1), buf)
        both = matmul(self._col, dout, out=buf.get("both", (K + 1, FN), W.dtype))  # dW and db
        dW = buf.get("dW", W.shape, W.dtype)
        np.copyto(dW.reshape(FN, K), both[:K].T)
        db = buf.get("db", (FN,), W.dtype)
        np.copyto(db, both[K])
        self.grads = {"W": dW, "b": db}
        if not need_dx:
            return None
        dcol = matmul(self._weights[:K], dout.T, out=buf.get("dcol", (K, len(out)), W.dtype))
        return _col2im(
            dcol,
            self._xp,
            self._x.shape,
            (FH, FW),
            self.layer.stride,
            self.layer.pad,
            self._grid,
            buf,
        )

    def _unpool(self, dpooled: np.ndarray, buf: Buffers) -> np.ndarray:
        """The gradient of the convolution's outputs: each window's to its first maximum."""
        out, pooled = self._out, self._pooled
        dout = buf.get("dout", out.shape, out.dtype)
        blocks, dblocks = out.reshape(-1, len(pooled)), dout.reshape(-1, len(pooled))
        hit = buf.get("hit", pooled.shape, np.bool_)
        open_ = buf.get("open", pooled.shape, np.bool_)
        open_[...] = True
        for block, dblock in zip(blocks, dblocks):
            np.equal(block, pooled, out=hit)
            hit &= open_
            open_ ^= hit  # a window's later maxima (ties) get nothing
            np.multiply(dpooled, hit, out=dblock)
        return dout


class PoolKernel(Kernel):
    """Max pooling of any window, stride and padding (−inf padding, as the layer's)."""

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        layer = self.layer
        if len(shape) != 4:
            return None
        oh, ow = _positions(shape[2], shape[3], layer.pool_h, layer.pool_w, layer.stride, layer.pad)
        return (*shape[:2], oh, ow) if min(oh, ow) >= 1 else None

    def _views(self, xp: np.ndarray, shape: tuple[int, ...]) -> Any:
        """Each position (i, j) of the window, in row-major order: the (N, C, oh, ow)
        view of the padded images at that position of every window."""
        s, (oh, ow) = self.layer.stride, shape[2:]
        for i in range(self.layer.pool_h):
            for j in range(self.layer.pool_w):
                yield xp[:, :, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s]

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf = self.buffers(train)
        xp = _padded(x, self.layer.pad, -np.inf, buf)
        y = buf.images("y", self.out_shape(x.shape), x.dtype)
        for k, view in enumerate(self._views(xp, y.shape)):
            if k == 0:
                np.copyto(y, view)
            else:
                np.maximum(y, view, out=y)
        if train:
            self._x, self._xp, self._y = x, xp, y
        return y

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        buf, y, xp, pad = self._train, self._y, self._xp, self.layer.pad
        dxp = buf.images("dxp", xp.shape, xp.dtype)
        dxp[...] = 0
        hit, open_ = buf.like("hit", y, np.bool_), buf.like("open", y, np.bool_)
        share = buf.like("share", y)
        open_[...] = True
        for view, dview in zip(self._views(xp, y.shape), self._views(dxp, y.shape)):
            np.equal(view, y, out=hit)
            hit &= open_
            open_ ^= hit  # the first maximum of each window takes its gradient
            dview += np.multiply(dy, hit, out=share)
        h, w = self._x.shape[2:]
        return dxp[:, :, pad : pad + h, pad : pad + w]


def _positions(h: int, w: int, fh: int, fw: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1


def _padded(x: np.ndarray, pad: int, value: float, buf: Buffers) -> np.ndarray:
    """x with ``pad`` values of ``value`` around each image, in a buffer whose border is
    written once; x itself without padding."""
    if not pad:
        return x
    n, c, h, w = x.shape
    xp = buf.images("padded", (n, c, h + 2 * pad, w + 2 * pad), x.dtype, fill=value)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    return xp


def _windows(
    xp: np.ndarray,
    fh: int,
    fw: int,
    stride: int,
    P: int | None,
    grid: tuple[int, ...],
    *,
    writeable: bool = False,
) -> np.ndarray:
    """The windows of padded images xp as a view (C, fh, fw, *grid): for grid (N, oh,
    ow) the output positions in the layer's order; for (P, P, N, ph, pw) position
    (i, j) of pooling window (ph, pw), that is output row P·ph + i, column P·pw + j."""
    sN, sC, sH, sW = xp.strides
    if P is None:
        steps = (sN, stride * sH, stride * sW)
    else:
        steps = (stride * sH, stride * sW, sN, P * stride * sH, P * stride * sW)
    shape = (xp.shape[1], fh, fw, *grid)
    return as_strided(xp, shape, (sC, sH, sW, *steps), writeable=writeable)


def _col2im(
    dcol: np.ndarray,
    xp: np.ndarray,
    x_shape: tuple[int, ...],
    window: tuple[int, int],
    stride: int,
    pad: int,
    grid: tuple[int, ...],
    buf: Buffers,
) -> np.ndarray:
    """The gradient of the images from that of ``col``'s rows: each filter entry's row
    added back onto the pixels it was copied from. For one entry (fh, fw) no two
    positions share a pixel, so each addition is one vectorised ``+=``."""
    fh, fw = window
    P = grid[0] if len(grid) == 5 else None
    dxp = buf.images("dxp", xp.shape, xp.dtype)
    dxp[...] = 0
    target = _windows(dxp, fh, fw, stride, P, grid, writeable=True)
    source = dcol.reshape(target.shape)
    for i in range(fh):
        for j in range(fw):
            target[:, i, j] += source[:, i, j]
    h, w = x_shape[2:]
    return dxp[:, :, pad : pad + h, pad : pad + w]


def _rows_channels_last(dy: np.ndarray, buf: Buffers, name: str) -> np.ndarray:
    """Images dy (N, C, H, W) as rows (N·H·W, C): free when stored channels last."""
    n, c, h, w = dy.shape
    if channels_last(dy):
        return dy.transpose(0, 2, 3, 1).reshape(-1, c)
    rows = buf.get(name, (n, h, w, c), dy.dtype)
    np.copyto(rows, dy.transpose(0, 2, 3, 1))
    return rows.reshape(-1, c)
