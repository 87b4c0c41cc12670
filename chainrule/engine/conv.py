"""The engine's kernels for the layers that slide windows: Convolution and max Pooling
(the contract is :mod:`chainrule.engine.dense`'s).

Images travel between kernels as (N, C, H, W) arrays stored channels last, (N, H, W, C)
in memory: the order in which a convolution's product writes them, so no kernel
transposes a batch. A convolution is one product of ``col``, the windows of the padded
images laid out a row per output position and a column per filter entry (fh, fw, c), with
the filters, plus a column of ones that carries the bias (its gradient comes out of the
same product as dW's). The input's gradient is one product per filter position (fh, fw),
added back onto the pixels that position read.

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

# Bytes of ``col`` per chunk of images: a few per chunk, so that it stays in the cache
# between being written and multiplied (the whole batch's goes out to memory and back).
_CHUNK_BYTES = 2**22
# Filters up to this many: float32 products compute two adjacent outputs a row
_NARROW_FILTERS = 16


class ConvKernel(Kernel):
    """A Convolution layer, with the Pooling after it when ``pool`` is given (its stride
    equal to its square window, no padding).

    The batch goes through in chunks of images whose ``col`` fits in the processor's
    cache: each chunk's windows are copied, multiplied and (in backward) added back while
    they are still there, instead of a ``col`` nine times the images' size (3×3 filters)
    going out to memory and back. Backward copies each chunk's windows again.
    """

    def __init__(self, layer: Any, pool: Any = None, scratch: Buffers | None = None) -> None:
        super().__init__(layer)
        self.pool = pool
        # A chunk's arrays, used only within one forward or backward call: the kernels of
        # one step can share them
        self.scratch = Buffers() if scratch is None else scratch

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        FN, C, FH, FW = self.layer.W.shape
        if len(shape) != 4 or shape[1] != C:
            return None
        n, _, h, w = shape
        oh, ow = _positions(h, w, FH, FW, self.layer.stride, self.layer.pad)
        if self.pool is not None:
            oh, ow = oh // self.pool.stride, ow // self.pool.stride
        return (n, FN, oh, ow) if min(oh, ow) >= 1 else None

    def _choose_width(self, dtype: np.dtype, ow: int) -> int:
        """How many horizontally adjacent outputs a row of the product computes (R): two
        for few float32 filters, where a product R·FN wide runs faster despite its
        (R−1)/FW more multiplications; one otherwise."""
        FN = self.layer.W.shape[0]
        if dtype != np.float32 or FN > _NARROW_FILTERS:
            return 1
        if self.pool is None:
            return 2 if ow % 2 == 0 else 1
        return 2 if self.pool.stride % 2 == 0 else 1

    def _grid(self, images: int, oh: int, ow: int) -> tuple[int, ...]:
        """The product's rows for ``images`` images, each R adjacent output positions:
        (images, oh, ow / R), or with a P×P pooling (P, images, oh / P, ow / P, P / R),
        so that a pooling window's rows are P blocks apart and its columns adjacent."""
        R = self._R
        if self.pool is None:
            return (images, oh, ow // R)
        P = self.pool.stride
        return (P, images, oh // P, ow // P, P // R)

    def _window_width(self) -> int:
        """The columns of the input that R adjacent outputs read."""
        return (self._R - 1) * self.layer.stride + self.layer.W.shape[3]

    def _chunks(self, n: int, rows: int, itemsize: int) -> list[tuple[int, int]]:
        _, C, FH, _ = self.layer.W.shape
        K = C * FH * self._window_width()
        per = max(1, _CHUNK_BYTES // ((K + 1) * rows * itemsize))
        return [(start, min(n, start + per)) for start in range(0, n, per)]

    def _col(self, xp: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
        """The windows of the padded images xp, (rows, K + 1), its last column ones."""
        _, C, FH, _ = self.layer.W.shape
        width = self._window_width()
        K, m = C * FH * width, int(np.prod(grid))
        col = self.scratch.front("col", (m, K + 1), xp.dtype)
        P = None if self.pool is None else self.pool.stride
        windows = _windows(xp, FH, width, self.layer.stride, self._R, P, grid)
        np.copyto(col[:, :K].reshape(windows.shape), windows)
        col[:, K] = 1
        return col

    def _wide_weights(self, buf: Buffers) -> np.ndarray:
        """The product's right side (K + 1, R·FN): column block r holds the filters at
        rows (fh, fw + r·stride, c) of the window, zeros elsewhere; the last row b."""
        W, R, s = self.layer.W, self._R, self.layer.stride
        FN, C, FH, FW = W.shape
        width = self._window_width()
        K = FH * width * C
        weights = buf.get("weights", (K + 1, R * FN), W.dtype)
        if R > 1:
            weights[...] = 0
        blocks = weights[:K].reshape(FH, width, C, R, FN)
        for r in range(R):
            np.copyto(blocks[:, r * s : r * s + FW, :, r], W.transpose(2, 3, 1, 0))
        weights[K].reshape(R, FN)[...] = self.layer.b
        return weights

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, W = self.buffers(train), self.layer.W
        FN, _, FH, FW = W.shape
        n = len(x)
        xp = _padded(x, self.layer.pad, 0.0, buf)
        oh, ow = _positions(x.shape[2], x.shape[3], FH, FW, self.layer.stride, self.layer.pad)
        self._R = R = self._choose_width(W.dtype, ow)
        rows = int(np.prod(self._grid(1, oh, ow))) * R  # output positions per image
        chunks = self._chunks(n, rows // R, W.dtype.itemsize)
        weights = self._wide_weights(buf)
        out = buf.get("out", (n * rows, FN), W.dtype)
        P = None if self.pool is None else self.pool.stride
        pooled = None if P is None else buf.get("pooled", (n * rows // P**2, FN), W.dtype)
        for start, stop in chunks:
            col = self._col(xp[start:stop], self._grid(stop - start, oh, ow))
            chunk = out[start * rows : stop * rows]
            matmul(col, weights, out=chunk.reshape(-1, R * FN))
            if pooled is not None:
                _pool_blocks(chunk, P, pooled[start * rows // P**2 : stop * rows // P**2])
        if train:
            self._x, self._xp, self._out, self._pooled = x, xp, out, pooled
            self._oh_ow, self._rows, self._chunks_used = (oh, ow), rows, chunks
        if pooled is None:
            return out.reshape(n, oh, ow, FN).transpose(0, 3, 1, 2)
        return pooled.reshape(n, oh // P, ow // P, FN).transpose(0, 3, 1, 2)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        buf, W, rows = self._train, self.layer.W, self._rows
        FN, C, FH, _ = W.shape
        K, R = C * FH * self._window_width(), self._R
        dy_rows = _rows_channels_last(dy, buf, "dy")  # (N·h·w, FN), h, w after the pooling
        # dWᵀ and, in its last column, db (of each of the R outputs a row computes): dyᵀ·col
        # runs faster than colᵀ·dy in BLAS
        both = buf.get("both", (R * FN, K + 1), W.dtype)
        part = buf.get("part", (R * FN, K + 1), W.dtype)
        # Stride 1: dx is a correlation of dy (padded) with the flipped filters, one
        # product per chunk (_correlate_input_gradient); else products added back.
        dyq = self._padded_dy(buf) if need_dx and self.layer.stride == 1 else None
        if need_dx and dyq is None:
            dxp = buf.images("dxp", self._xp.shape, W.dtype)
            dxp[...] = 0
        pooled_rows = rows if self.pool is None else rows // self.pool.stride**2
        for i, (start, stop) in enumerate(self._chunks_used):
            grid = self._grid(stop - start, *self._oh_ow)
            col = self._col(self._xp[start:stop], grid)
            dchunk = dy_rows[start * pooled_rows : stop * pooled_rows]
            if self.pool is not None:
                out = self._out[start * rows : stop * rows]
                dchunk = _unpool(
                    out,
                    self.pool.stride,
                    self._pooled[start * pooled_rows : stop * pooled_rows],
                    dchunk,
                    self.scratch,
                )
            matmul(dchunk.reshape(-1, R * FN).T, col, out=both if i == 0 else part)
            if i:
                both += part
            if need_dx and dyq is not None:
                self._to_image_order(dchunk, stop - start, self._interior(dyq[start:stop]))
            elif need_dx:
                self._add_input_gradient(dchunk, stop - start, dxp[start:stop])
        self.grads = self._parameter_gradients(both, buf)
        if not need_dx:
            return None
        if dyq is not None:
            return self._correlate_input_gradient(dyq, buf)
        pad, (h, w) = self.layer.pad, self._x.shape[2:]
        return dxp[:, :, pad : pad + h, pad : pad + w]

    def _parameter_gradients(self, both: np.ndarray, buf: Buffers) -> dict[str, np.ndarray]:
        """dW and db from ``both`` (R·FN, K + 1): the sum over the R outputs of a row of
        the window's entries each one read (rows fh, fw + r·stride)."""
        W, R, s = self.layer.W, self._R, self.layer.stride
        FN, C, FH, FW = W.shape
        K = FH * self._window_width() * C
        blocks = both[:, :K].reshape(R, FN, FH, self._window_width(), C)
        rows = buf.get("dW_rows", (FN, FH, FW, C), W.dtype)
        np.copyto(rows, blocks[0, :, :, :FW])
        for r in range(1, R):
            rows += blocks[r, :, :, r * s : r * s + FW]
        dW = buf.get("dW", W.shape, W.dtype)
        np.copyto(dW, rows.transpose(0, 3, 1, 2))
        db = buf.get("db", (FN,), W.dtype)
        np.sum(both[:, K].reshape(R, FN), axis=0, out=db)
        return {"W": dW, "b": db}

    def _dy_margins(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """For stride 1, per axis: the zeros around dy so that its windows are dx's
        positions (filter side − 1 − pad, or 0), and where dx's first window starts in
        that padded dy (pad − (filter side − 1), or 0, when the pad is wider)."""
        _, _, FH, FW = self.layer.W.shape
        pad = self.layer.pad
        return tuple((max(f - 1 - pad, 0), max(pad - f + 1, 0)) for f in (FH, FW))

    def _padded_dy(self, buf: Buffers) -> np.ndarray:
        """A buffer (N, oh + 2·margin, ow + 2·margin, FN) for dy in image order, its
        border zero (written once, when made)."""
        FN = self.layer.W.shape[0]
        (qh, _), (qw, _) = self._dy_margins()
        oh, ow = self._oh_ow
        shape = (len(self._x), oh + 2 * qh, ow + 2 * qw, FN)
        return buf.get("dy_padded", shape, self.layer.W.dtype, fill=0)

    def _interior(self, dyq: np.ndarray) -> np.ndarray:
        """The part of padded dy images (n, H', W', FN) that holds dy itself."""
        (qh, _), (qw, _) = self._dy_margins()
        oh, ow = self._oh_ow
        return dyq[:, qh : qh + oh, qw : qw + ow]

    def _to_image_order(self, dchunk: np.ndarray, images: int, target: np.ndarray) -> None:
        """Write a chunk's output gradient (rows in the order computed) into ``target``
        (images, oh, ow, FN), image order; positions no pooling window covers get 0."""
        FN = self.layer.W.shape[0]
        oh, ow = self._oh_ow
        if self.pool is None:
            np.copyto(target, dchunk.reshape(images, oh, ow, FN))
            return
        P = self.pool.stride
        if oh % P or ow % P:
            target[...] = 0
        blocks = dchunk.reshape(P, images, oh // P, ow // P, P, FN)
        for i in range(P):
            for j in range(P):
                target[:, i : P * (oh // P) : P, j : P * (ow // P) : P] = blocks[i, ..., j, :]

    def _correlate_input_gradient(self, dyq: np.ndarray, buf: Buffers) -> np.ndarray:
        """dx (N, C, H, W), stored channels last, of a stride-1 convolution:
        ``dx[y, x] = Σ dy[y + pad − i, x + pad − j] · W[:, :, i, j]``, the windows of the
        padded dy times the filters turned by 180°, in chunks that stay in the cache."""
        W = self.layer.W
        FN, C, FH, FW = W.shape
        n, h, w = len(self._x), *self._x.shape[2:]
        (_, sh), (_, sw) = self._dy_margins()
        K = FH * FW * FN
        flipped = buf.get("flipped", (K, C), W.dtype)  # rows (i', j', f): W[f, :, -i', -j']
        np.copyto(flipped.reshape(FH, FW, FN, C), W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1))
        dx = buf.get("dx", (n, h, w, C), W.dtype)
        rows = dx.reshape(-1, C)
        per = max(1, _CHUNK_BYTES // (K * h * w * W.dtype.itemsize))
        sN, sH, sW, sF = dyq.strides
        for start in range(0, n, per):
            stop = min(n, start + per)
            images = dyq[start:stop, sh:, sw:]
            windows = as_strided(images, (stop - start, h, w, FH, FW, FN), (sN, sH, sW, sH, sW, sF))
            col = self.scratch.front("dy_col", ((stop - start) * h * w, K), W.dtype)
            np.copyto(col.reshape(windows.shape), windows)
            matmul(col, flipped, out=rows[start * h * w : stop * h * w])
        return dx.transpose(0, 3, 1, 2)

    def _add_input_gradient(self, dchunk: np.ndarray, images: int, dxp: np.ndarray) -> None:
        """Add a chunk's gradient onto its padded images' ``dxp``, from its outputs'
        ``dchunk`` (rows in the order computed): a product per filter position (fh, fw),
        added onto the pixels that position read, in runs of a whole output row."""
        FN, C, FH, FW = self.layer.W.shape
        (oh, ow), s = self._oh_ow, self.layer.stride
        if self.pool is not None:  # the rows back in image order (n, oh, ow)
            image = self.scratch.front("dimage", (images, oh, ow, FN), dchunk.dtype)
            self._to_image_order(dchunk, images, image)
            dchunk = image.reshape(-1, FN)
        share = self.scratch.front("dcol", (len(dchunk), C), dchunk.dtype)
        pixels = share.reshape(images, oh, ow, C).transpose(0, 3, 1, 2)
        for i in range(FH):
            for j in range(FW):
                matmul(dchunk, self.layer.W[:, :, i, j], out=share)
                dxp[:, :, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s] += pixels


def _window_blocks(out: np.ndarray, P: int) -> list[np.ndarray]:
    """A chunk's outputs in pooling order (P, windows, P, FN) as its P·P blocks (M, FN),
    in the window's row-major order: block (i, j) holds each window's position (i, j)."""
    blocks = out.reshape(P, -1, P, out.shape[-1])
    return [blocks[i, :, j] for i in range(P) for j in range(P)]


def _pool_blocks(out: np.ndarray, P: int, pooled: np.ndarray) -> None:
    """The maximum of the P·P blocks of a chunk's outputs in pooling order, into
    ``pooled``."""
    blocks = _window_blocks(out, P)
    np.copyto(pooled, blocks[0])
    for block in blocks[1:]:
        np.maximum(pooled, block, out=pooled)


def _unpool(
    out: np.ndarray, P: int, pooled: np.ndarray, dpooled: np.ndarray, buf: Buffers
) -> np.ndarray:
    """The gradient of a chunk's convolution outputs: each window's to its first maximum."""
    dout = buf.front("dout", out.shape, out.dtype)
    blocks, dblocks = _window_blocks(out, P), _window_blocks(dout, P)
    hit = buf.front("hit", pooled.shape, np.bool_)
    open_ = buf.front("open", pooled.shape, np.bool_)
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
    R: int,
    P: int | None,
    grid: tuple[int, ...],
) -> np.ndarray:
    """The windows of padded images xp as a view (*grid, fh, fw, C), each read by R
    adjacent outputs: for grid (N, oh, ow / R) those from output (y, R·x) on; for (P, N,
    ph, pw, P / R) those from row P·ph + i, column P·pw + R·j of pooling window (ph, pw).
    A window's (fw, c) run is contiguous in images stored channels last."""
    sN, sC, sH, sW = xp.strides
    if P is None:
        steps = (sN, stride * sH, R * stride * sW)
    else:
        steps = (stride * sH, sN, P * stride * sH, P * stride * sW, R * stride * sW)
    shape = (*grid, fh, fw, xp.shape[1])
    return as_strided(xp, shape, (*steps, sH, sW, sC), writeable=False)


def _rows_channels_last(dy: np.ndarray, buf: Buffers, name: str) -> np.ndarray:
    """Images dy (N, C, H, W) as rows (N·H·W, C): free when stored channels last."""
    n, c, h, w = dy.shape
    if channels_last(dy):
        return dy.transpose(0, 2, 3, 1).reshape(-1, c)
    rows = buf.get(name, (n, h, w, c), dy.dtype)
    np.copyto(rows, dy.transpose(0, 2, 3, 1))
    return rows.reshape(-1, c)
