"""The engine's max pooling kernel, and the pooling a convolution kernel fused with it
does over its outputs in pooling order (:mod:`chainrule.engine.conv`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.buffers import Buffers
from chainrule.engine.dense import Kernel
from chainrule.engine.windows import padded, positions

__all__ = ["PoolKernel", "pool_blocks", "unpool", "unpool_into", "window_blocks"]


def window_blocks(out: np.ndarray, P: int, R: int) -> list[np.ndarray]:
    """A chunk's outputs in pooling order (P, P / R, windows, R, FN) as its P·P blocks
    (windows, FN), in the window's row-major order: block (i, j) holds each window's
    position (i, j), ``[i, j // R, :, j % R]`` (contiguous when R is 1)."""
    blocks = out.reshape(P, P // R, -1, R, out.shape[-1])
    return [blocks[i, j // R, :, j % R] for i in range(P) for j in range(P)]


def pool_blocks(out: np.ndarray, P: int, R: int, pooled: np.ndarray) -> None:
    """The maximum of the P·P blocks of a chunk's outputs in pooling order, into
    ``pooled``."""
    first, *others = window_blocks(out, P, R)
    if not others:
        np.copyto(pooled, first)
        return
    np.maximum(first, others[0], out=pooled)  # not a copy first: strided, it costs as much
    for block in others[1:]:
        np.maximum(pooled, block, out=pooled)


def unpool(
    out: np.ndarray, P: int, R: int, pooled: np.ndarray, dpooled: np.ndarray, buf: Buffers
) -> np.ndarray:
    """The gradient of a chunk's convolution outputs, in pooling order as ``out``: each
    window's to its first maximum."""
    dout = buf.front("dout", out.shape, out.dtype)
    unpool_into(window_blocks(dout, P, R), out, P, R, pooled, dpooled, buf)
    return dout


def unpool_into(
    dblocks: list[np.ndarray],
    out: np.ndarray,
    P: int,
    R: int,
    pooled: np.ndarray,
    dpooled: np.ndarray,
    buf: Buffers,
) -> None:
    """Each window's gradient to its first maximum, into ``dblocks``: the P·P positions
    of the windows, in the window's row-major order, each of pooled's shape or any other
    of its size (the positions of the images in image order, say)."""
    hit = buf.front("hit", pooled.shape, np.bool_)
    open_ = buf.front("open", pooled.shape, np.bool_)  # windows whose maximum is yet to come
    shape, last = dblocks[0].shape, P * P - 1
    for k, (block, dblock) in enumerate(zip(window_blocks(out, P, R), dblocks)):
        np.equal(block, pooled, out=hit)
        if k == 0:
            np.logical_not(hit, out=open_)
        else:
            hit &= open_
            if k < last:
                open_ ^= hit  # a window's later maxima (ties) get nothing
        np.multiply(dpooled.reshape(shape), hit.reshape(shape), out=dblock)


class PoolKernel(Kernel):
    """Max pooling of any window, stride and padding (−inf padding, as the layer's)."""

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        layer = self.layer
        if len(shape) != 4:
            return None
        oh, ow = positions(shape[2], shape[3], layer.pool_h, layer.pool_w, layer.stride, layer.pad)
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
        xp = padded(x, self.layer.pad, -np.inf, buf)
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
