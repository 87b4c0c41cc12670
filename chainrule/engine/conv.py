"""The engine's convolution kernel (the contract is :mod:`chainrule.engine.dense`'s; max
pooling is :mod:`chainrule.engine.pool`'s, the windows :mod:`chainrule.engine.windows`').

Images travel between kernels as (N, C, H, W) arrays stored channels last, (N, H, W, C)
in memory: the order in which a convolution's product writes them, so no kernel
transposes a batch. A convolution is one product of ``col``, the windows of the padded
images laid out a row per output position and a column per filter entry (fh, fw, c), with
the filters, plus a column of ones that carries the bias (its gradient comes out of the
same product as dW's). In float32, with few filters, a row holds the window of R = 2
horizontally adjacent outputs (one column wider) and the filters two column blocks, so
that the product is twice as wide (``windows.output_width``). With one input channel
(the first layer on MNIST) ``col`` is built transposed, a row per filter entry, whose
copy runs along the images' rows instead of in runs of a window's few values.

The input's gradient of a stride-1 convolution is a convolution too: the windows of dy,
padded by the filter's reach less the layer's pad, times the filters turned by 180°, one
product that writes dx channels last. The same windows, transposed, times the input's
pixels give dW, so backward copies no windows of the input. Other strides (and the first
layer, which needs no dx) take dW from the input's windows, colᵀ·dy, and dx as one product
per filter position (fh, fw), added back onto the pixels that position read.

A convolution followed by a pooling whose stride is its P×P window (the book's 2×2) is
one kernel: it computes the convolution's outputs in the order the pooling reads them,
first every window's top-left position (of all images), then every window's next (two
side by side in a row when R = 2), so that pooling is the maximum of P·P blocks;
positions no window covers (an odd last row or column) are not computed at all.
Backward sends each window's gradient to its first maximum, in the window's row-major
order, as the layer's argmax does.
"""

from __future__ import annotations

import itertools
import math
from functools import cache, partial
from typing import Any, NamedTuple

import numpy as np

from chainrule.blas import matmul, share
from chainrule.engine.buffers import Buffers
from chainrule.engine.dense import Kernel, relu_backward_from_output
from chainrule.engine.pool import pool_blocks, unpool, unpool_into
from chainrule.engine.windows import (
    copy_shared,
    output_width,
    padded,
    place_filters,
    positions,
    rows_channels_last,
    strided_view,
    window_view,
)

__all__ = ["ConvKernel"]

# Bytes of ``col`` per chunk of images: a few per chunk, so that it stays in the cache
# between being written and multiplied (the whole batch's goes out to memory and back).
# Backward keeps dy's windows and the unpooled gradient beside it: the size that ran
# fastest of those measured (docs/performance.md).
_CHUNK_BYTES = 5 * 2**19
# OpenBLAS multiplies matrices of at most 100³ multiply-adds as they lie, without first
# copying them into a layout of its own as it does larger ones (a copy of a large share
# of the step's time, docs/performance.md): the windows' products go in slices of rows
# that small, of at least _LEAST_SLICE rows
_SLICE_MACS = 1_000_000
_LEAST_SLICE = 8
# The chunks of a batch come in multiples of this many (as far as it has images), of
# sizes that differ by one image at most: two or four workers get equal shares.
_CHUNK_MULTIPLE = 4


def chunk_bounds(n: int, image_bytes: int) -> list[tuple[int, int]]:
    """Images ``start:stop`` of each chunk of a batch of n, ``image_bytes`` of ``col`` an
    image: a function of the two numbers alone, so a layer's sums over its chunks do not
    depend on the thread count."""
    count = -(-n // max(1, _CHUNK_BYTES // image_bytes))
    count = min(n, -(-count // _CHUNK_MULTIPLE) * _CHUNK_MULTIPLE)
    return list(itertools.pairwise(i * n // count for i in range(count + 1)))


class _Correlation(NamedTuple):
    """What a stride-1 convolution's input gradient is computed from, chunk by chunk."""

    flipped: np.ndarray  # the filters turned by 180°, R adjacent positions a row
    dx: np.ndarray  # (N, H, W, C)
    R: int
    ones: np.ndarray  # as many as the rows of dy of a chunk, at least


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, whole_batch: bool) -> None:
    """a·b into ``out``: for a chunk of the batch (the workers share the chunks), BLAS
    calls on a stack of slices of a's rows (see _SLICE_MACS); blocks shared among the
    workers for a chunk that is the whole batch."""
    if whole_batch:
        matmul(a, b, out=out)
        return
    (m, k), n = a.shape, b.shape[1]
    rows = _slice_rows(m, k, n) if a.flags.c_contiguous and out.flags.c_contiguous else m
    if rows == m:
        np.matmul(a, b, out=out)
    else:  # NumPy's matmul of a stack calls BLAS for each slice, in C
        np.matmul(a.reshape(-1, rows, k), b, out=out.reshape(-1, rows, n))


def _sum_in_order(addends: list[np.ndarray]) -> np.ndarray:
    """The first of ``addends``, the others added onto it one after the other."""
    for addend in addends[1:]:
        addends[0] += addend
    return addends[0]


@cache
def _slice_rows(m: int, k: int, n: int) -> int:
    """The rows of each slice of an (m × k)·(k × n) product: the most that divide m and
    keep a slice within _SLICE_MACS, or all m where no divisor of at least _LEAST_SLICE
    does."""
    most = min(m, _SLICE_MACS // (k * n))
    return next((d for d in range(most, _LEAST_SLICE - 1, -1) if m % d == 0), m)


class ConvKernel(Kernel):
    """A Convolution layer, with the Pooling after it when ``pool`` is given (its stride
    equal to its square window, no padding), and the ReLU after those when ``relu``.

    The batch goes through in chunks of images whose ``col`` fits in the processor's
    cache: each chunk's windows are copied and multiplied while they are still there,
    instead of a ``col`` nine times the images' size (3×3 filters) going out to memory
    and back. Backward copies the windows of each chunk's dy (stride 1), or the input's
    again.
    """

    def __init__(
        self, layer: Any, pool: Any = None, scratch: Buffers | None = None, relu: bool = False
    ) -> None:
        super().__init__(layer)
        self.pool = pool
        self.relu = relu  # applied to each chunk's outputs while they are in the cache
        # A chunk's arrays, used only within one forward or backward call: the kernels of
        # one step can share them
        self.scratch = Buffers() if scratch is None else scratch

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        FN, C, FH, FW = self.layer.W.shape
        if len(shape) != 4 or shape[1] != C:
            return None
        n, _, h, w = shape
        oh, ow = positions(h, w, FH, FW, self.layer.stride, self.layer.pad)
        if self.pool is not None:
            oh, ow = oh // self.pool.stride, ow // self.pool.stride
        return (n, FN, oh, ow) if min(oh, ow) >= 1 else None

    def chunked_multiplies(self, shape: tuple[int, ...]) -> int:
        n, _, h, w = shape
        oh, ow = positions(h, w, *self.layer.W.shape[2:], self.layer.stride, self.layer.pad)
        return n * oh * ow * self.layer.W.size

    def _choose_width(self, dtype: np.dtype, ow: int) -> int:
        """How many horizontally adjacent outputs a row of the product computes (R). Fused
        with a pooling, R = 2 makes the pooling's blocks strided: worth it only where the
        product is the larger cost, windows of at least 2·FN entries."""
        FN, C, FH, FW = self.layer.W.shape
        if C == 1:
            return 1  # a row per output: see _col
        if self.pool is None:
            return output_width(dtype, FN, ow % 2 == 0)
        return output_width(dtype, FN, self.pool.stride % 2 == 0 and C * FH * FW >= 2 * FN)

    def _grid(self, images: int, oh: int, ow: int) -> tuple[int, ...]:
        """The product's rows for ``images`` images, each R adjacent output positions:
        (images, oh, ow / R), or with a P×P pooling (P, P / R, images, oh / P, ow / P):
        each position of the pooling windows a block of rows (R of them side by side)."""
        R = self._R
        if self.pool is None:
            return (images, oh, ow // R)
        P = self.pool.stride
        return (P, P // R, images, oh // P, ow // P)

    def _window_width(self) -> int:
        """The columns of the input that R adjacent outputs read."""
        return (self._R - 1) * self.layer.stride + self.layer.W.shape[3]

    def _chunks(self, n: int, rows: int, itemsize: int) -> list[tuple[int, int]]:
        _, C, FH, _ = self.layer.W.shape
        K = C * FH * self._window_width()
        return chunk_bounds(n, (K + 1) * rows * itemsize)

    def _col(self, xp: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
        """The windows of the padded images xp, (rows, K + 1), its last column ones."""
        _, C, FH, _ = self.layer.W.shape
        width = self._window_width()
        K, m = C * FH * width, math.prod(grid)
        P = None if self.pool is None else self.pool.stride
        windows = window_view(xp, FH, width, self.layer.stride, self._R, P, grid)
        # The calling thread's buffer: the workers copy the windows of chunks side by side
        scratch = self.scratch.for_thread()
        if C == 1:
            # A one-channel window's rows are runs of a few values, slow to copy: col is
            # copied as its transpose instead, a row per filter entry, in runs along the
            # images' rows; BLAS reads either order.
            col_t = scratch.front("col", (K + 1, m), xp.dtype)
            spread = windows.transpose(*range(len(grid), windows.ndim), *range(len(grid)))
            copy_shared(col_t[:K].reshape(spread.shape), spread)
            col_t[K] = 1
            return col_t.T
        col = scratch.front("col", (m, K + 1), xp.dtype)
        copy_shared(col[:, :K].reshape(windows.shape), windows)
        col[:, K] = 1
        return col

    def _wide_weights(self, buf: Buffers) -> np.ndarray:
        """The product's right side (K + 1, R·FN): column block r holds the filters at
        rows (fh, fw + r·stride, c) of the window, zeros elsewhere; the last row b."""
        W, R = self.layer.W, self._R
        FN, C, FH, _ = W.shape
        K = FH * self._window_width() * C
        weights = buf.get("weights", (K + 1, R * FN), W.dtype)
        place_filters(W, R, self.layer.stride, weights[:K])
        weights[K].reshape(R, FN)[...] = self.layer.b
        return weights

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        buf, W = self.buffers(train), self.layer.W
        FN, _, FH, FW = W.shape
        n = len(x)
        xp = padded(x, self.layer.pad, 0.0, buf)
        oh, ow = positions(x.shape[2], x.shape[3], FH, FW, self.layer.stride, self.layer.pad)
        self._R = R = self._choose_width(W.dtype, ow)
        rows = math.prod(self._grid(1, oh, ow)) * R  # output positions per image
        chunks = self._chunks(n, rows // R, W.dtype.itemsize)
        weights = self._wide_weights(buf)
        out = buf.get("out", (n * rows, FN), W.dtype)
        P = None if self.pool is None else self.pool.stride
        pooled = None if P is None else buf.get("pooled", (n * rows // P**2, FN), W.dtype)
        # Chunks, not a chunk's product, shared among the workers: one wait per layer
        # instead of one per chunk, and the windows' copies shared too. Each chunk's
        # numbers are the same whichever thread computes it.
        share(
            [
                partial(self._forward_chunk, xp, weights, out, pooled, (oh, ow), chunk)
                for chunk in chunks
            ]
        )
        if train:
            self._x, self._xp, self._out, self._pooled = x, xp, out, pooled
            self._oh_ow, self._rows, self._chunks_used = (oh, ow), rows, chunks
            self._train_R = R  # an inference forward before backward may set another
        if pooled is None:
            return out.reshape(n, oh, ow, FN).transpose(0, 3, 1, 2)
        return pooled.reshape(n, oh // P, ow // P, FN).transpose(0, 3, 1, 2)

    def _forward_chunk(
        self,
        xp: np.ndarray,
        weights: np.ndarray,
        out: np.ndarray,
        pooled: np.ndarray | None,
        oh_ow: tuple[int, int],
        chunk: tuple[int, int],
    ) -> None:
        """The outputs of images ``start:stop`` of the padded xp into their rows of ``out``,
        pooled into ``pooled`` when the kernel pools; then the ReLU, when it has one."""
        (oh, ow), (start, stop) = oh_ow, chunk
        rows = math.prod(self._grid(1, oh, ow)) * self._R
        col = self._col(xp[start:stop], self._grid(stop - start, oh, ow))
        outputs = out[start * rows : stop * rows]
        _product(col, weights, outputs.reshape(-1, weights.shape[1]), stop - start == len(xp))
        if pooled is not None:
            P = self.pool.stride
            maxima = pooled[start * rows // P**2 : stop * rows // P**2]
            pool_blocks(outputs, P, self._R, maxima)
            outputs = maxima
        if self.relu:
            np.maximum(outputs, 0, out=outputs)

    def backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        buf, W = self._train, self.layer.W
        self._R = self._train_R
        FN, C, FH, _ = W.shape
        K, R = C * FH * self._window_width(), self._R
        self._lay_out_dy()
        dy_rows = rows_channels_last(dy, buf, "dy")  # (N·h·w, FN), h, w after the pooling
        chunks = self._chunks_used
        # Stride 1: dx is a correlation of dy (padded) with the flipped filters, and dW
        # comes from the same windows of dy (_correlate_chunk); else dW from the input's
        # windows (colᵀ·dy, db in its last row) and products added back onto dxp.
        correlation = dxp = None
        if need_dx and self.layer.stride == 1:
            correlation = self._input_correlation(buf)
            shape = correlation.flipped.shape
        else:
            shape = (K + 1, R * FN)
            if need_dx:
                dxp = buf.images("dxp", self._xp.shape, W.dtype)
                dxp[...] = 0
        # Each chunk's share of dW (and of db, for stride 1: else it is in dW's last row),
        # added in the chunks' order after, so that the sum does not depend on which
        # worker computed which
        parts = [buf.get(f"part{i}", shape, W.dtype) for i in range(len(chunks))]
        biases = [
            buf.get(f"db{i}", (FN,), W.dtype) if correlation else None for i in range(len(chunks))
        ]
        share(
            [
                partial(self._backward_chunk, dy_rows, part, db, correlation, dxp, chunk)
                for part, db, chunk in zip(parts, biases, chunks)
            ]
        )
        both = _sum_in_order(parts)
        if correlation is None:
            self.grads = self._parameter_gradients(both.T, buf)
            return None if dxp is None else self._unpadded(dxp)
        db = _sum_in_order(biases)
        self.grads = self._gradients_from_dy(both, db, correlation.R, buf)
        return correlation.dx.transpose(0, 3, 1, 2)

    def _unpadded(self, dxp: np.ndarray) -> np.ndarray:
        pad, (h, w) = self.layer.pad, self._x.shape[2:]
        return dxp[:, :, pad : pad + h, pad : pad + w]

    def _backward_chunk(
        self,
        dy_rows: np.ndarray,
        part: np.ndarray,
        db: np.ndarray,
        correlation: _Correlation | None,
        dxp: np.ndarray | None,
        chunk: tuple[int, int],
    ) -> None:
        """Images ``start:stop``'s share of dW and db, into ``part`` (and ``db``), and their
        input gradient: by the ``correlation`` (stride 1), or added onto ``dxp``."""
        (start, stop), rows, R = chunk, self._rows, self._R
        FN = self.layer.W.shape[0]
        pooled_rows = rows if self.pool is None else rows // self.pool.stride**2
        dchunk = dy_rows[start * pooled_rows : stop * pooled_rows]
        if self.relu:  # the outputs the ReLU read: after the pooling, if any
            outputs = self._out if self.pool is None else self._pooled
            y = outputs[start * pooled_rows : stop * pooled_rows]
            relu_backward_from_output(dchunk, y, self.scratch.for_thread())
        if correlation is not None:
            # db as ones·dy: far faster than a sum down the rows
            np.matmul(correlation.ones[: len(dchunk)], dchunk.reshape(-1, FN), out=db)
            dyq = self._padded_dy(stop - start)
            if self.pool is None:
                self._to_image_order(dchunk, stop - start, self._interior(dyq))
            else:  # unpooled straight into the padded dy, in image order
                self._unpool_to_image_order(dchunk, start, stop, self._interior(dyq))
            self._correlate_chunk(correlation, dyq, part, start, stop)
            return
        if self.pool is not None:
            dchunk = unpool(
                self._out[start * rows : stop * rows],
                self.pool.stride,
                R,
                self._pooled[start * pooled_rows : stop * pooled_rows],
                dchunk,
                self.scratch.for_thread(),
            )
        col = self._col(self._xp[start:stop], self._grid(stop - start, *self._oh_ow))
        # colᵀ·dy: OpenBLAS runs it faster than dyᵀ·col, whose output is wider than tall
        whole = stop - start == len(self._xp)
        _product(col.T, dchunk.reshape(-1, R * FN), part, whole)
        if dxp is not None:
            self._add_input_gradient(dchunk, stop - start, dxp[start:stop])

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

    def _lay_out_dy(self) -> None:
        """Once a backward, what its chunks read: dy's margins, and the name and shape of
        the buffer of a chunk's padded dy (named by both: the step's kernels share the
        threads' buffers)."""
        self._margins = (qh, _), (qw, _) = self._dy_margins()
        (oh, ow), most = self._oh_ow, max(stop - start for start, stop in self._chunks_used)
        shape = (most, oh + 2 * qh, ow + 2 * qw, self.layer.W.shape[0])
        self._dy_padded = f"dy_padded {shape} {self._margins}", shape

    def _padded_dy(self, images: int) -> np.ndarray:
        """The calling thread's buffer (images, oh + 2·margin, ow + 2·margin, FN) for a
        chunk's dy in image order, its border zero (written once, when made): a chunk's,
        not the batch's, so that it stays in the cache from written to read."""
        name, shape = self._dy_padded
        return self.scratch.for_thread().get(name, shape, self.layer.W.dtype, fill=0)[:images]

    def _interior(self, dyq: np.ndarray) -> np.ndarray:
        """The part of padded dy images (n, H', W', FN) that holds dy itself."""
        (qh, _), (qw, _) = self._margins
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
        P, R = self.pool.stride, self._R
        blocks = dchunk.reshape(P, P // R, images, oh // P, ow // P, R, FN)
        for i, view in enumerate(self._image_blocks(target)):
            view[...] = blocks[i // P, i % P // R, :, :, :, i % P % R]

    def _image_blocks(self, target: np.ndarray) -> list[np.ndarray]:
        """The P·P positions of the pooling windows in images ``target`` (images, oh, ow,
        FN), in the window's row-major order, after zeroing the positions none covers."""
        P, (oh, ow) = self.pool.stride, self._oh_ow
        if oh % P or ow % P:
            target[...] = 0
        return [target[:, i : P * (oh // P) : P, j : P * (ow // P) : P]
                for i in range(P) for j in range(P)]  # fmt: skip

    def _unpool_to_image_order(
        self, dpooled: np.ndarray, start: int, stop: int, target: np.ndarray
    ) -> None:
        """The gradient of the outputs of images ``start:stop``, from their windows'
        ``dpooled``, into ``target`` (images, oh, ow, FN) in image order."""
        P, rows = self.pool.stride, self._rows
        pooled = self._pooled[start * rows // P**2 : stop * rows // P**2]
        out = self._out[start * rows : stop * rows]
        blocks = self._image_blocks(target)
        unpool_into(blocks, out, P, self._R, pooled, dpooled, self.scratch.for_thread())

    def _input_correlation(self, buf: Buffers) -> _Correlation:
        """What the input gradient of a stride-1 convolution is computed from, chunk by
        chunk (:meth:`_correlate_chunk`, with each chunk's dy padded): the filters turned
        by 180° and laid out for R adjacent positions a row (as the forward's), and dx's
        buffer."""
        W = self.layer.W
        FN, C, FH, FW = W.shape
        n, h, w = len(self._x), *self._x.shape[2:]
        R = output_width(W.dtype, C, w % 2 == 0)
        flipped = buf.get("flipped", (FH * (FW + R - 1) * FN, R * C), W.dtype)
        place_filters(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], R, 1, flipped)
        dx = buf.get("dx", (n, h, w, C), W.dtype)
        rows = max(stop - start for start, stop in self._chunks_used) * len(self._out) // n
        ones = buf.get("ones", (rows,), W.dtype, fill=1)
        return _Correlation(flipped, dx, R, ones)

    def _correlate_chunk(
        self, correlation: _Correlation, dyq: np.ndarray, part: np.ndarray, start: int, stop: int
    ) -> None:
        """dx (channels last) of images ``start:stop``, from their padded dy ``dyq``:
        ``dx[y, x] = Σ dy[y + pad − i, x + pad − j] · W[:, :, i, j]``, the windows of the
        padded dy times the flipped filters, copied and multiplied while in the cache.
        The same windows give dW: their transpose times the input's pixels, into ``part``
        (see :meth:`_gradients_from_dy`)."""
        flipped, dx, R, _ = correlation
        FN, C, FH, FW = self.layer.W.shape
        (_, sh), (_, sw) = self._margins
        images, (h, w), width = stop - start, dx.shape[1:3], FW + R - 1
        sN, sH, sW, sF = dyq.strides
        shape = (images, h, w // R, FH, width, FN)
        windows = strided_view(dyq, shape, (sN, sH, R * sW, sH, sW, sF), sh * sH + sw * sW)
        scratch = self.scratch.for_thread()
        col = scratch.front("dy_col", (images * h * w // R, len(flipped)), dx.dtype)
        np.copyto(col.reshape(windows.shape), windows)
        whole = images == len(dx)
        _product(col, flipped, dx[start:stop].reshape(-1, R * C), whole)
        # The input's pixels as rows of R: a view when stored channels last, as the
        # kernels before it store them (else reshape copies)
        pixels = self._x[start:stop].transpose(0, 2, 3, 1).reshape(-1, R * C)
        _product(col.T, pixels, part, whole)

    def _gradients_from_dy(
        self, both: np.ndarray, db: np.ndarray, R: int, buf: Buffers
    ) -> dict[str, np.ndarray]:
        """dW from ``both`` = Σ (dy's windows)ᵀ · (R adjacent input pixels), (FH·(FW + R −
        1)·FN, R·C): ``dW[f, c, i, j] = Σ_r both[(FH−1−i, FW−1−j + r, f), (r, c)]``, since a
        window of dy around pixel (y, x) holds at (i', j') the output (y + pad − FH + 1 +
        i', x + pad − FW + 1 + j'), which read that pixel with the filter's entry (FH − 1 −
        i', FW − 1 − j')."""
        W = self.layer.W
        FN, C, FH, FW = W.shape
        blocks = both.reshape(FH, FW + R - 1, FN, R, C)
        flipped = buf.get("dW_flipped", (FH, FW, FN, C), W.dtype)
        np.copyto(flipped, blocks[:, :FW, :, 0])
        for r in range(1, R):
            flipped += blocks[:, r : r + FW, :, r]
        dW = buf.get("dW", W.shape, W.dtype)
        np.copyto(dW, flipped[::-1, ::-1].transpose(2, 3, 0, 1))
        return {"W": dW, "b": db}

    def _add_input_gradient(self, dchunk: np.ndarray, images: int, dxp: np.ndarray) -> None:
        """Add a chunk's gradient onto its padded images' ``dxp``, from its outputs'
        ``dchunk`` (rows in the order computed): a product per filter position (fh, fw),
        added onto the pixels that position read, in runs of a whole output row."""
        FN, C, FH, FW = self.layer.W.shape
        (oh, ow), s = self._oh_ow, self.layer.stride
        scratch = self.scratch.for_thread()
        if self.pool is not None:  # the rows back in image order (n, oh, ow)
            image = scratch.front("dimage", (images, oh, ow, FN), dchunk.dtype)
            self._to_image_order(dchunk, images, image)
            dchunk = image.reshape(-1, FN)
        share_of_x = scratch.front("dcol", (len(dchunk), C), dchunk.dtype)
        pixels = share_of_x.reshape(images, oh, ow, C).transpose(0, 3, 1, 2)
        whole = images == len(self._xp)
        for i in range(FH):
            for j in range(FW):
                _product(dchunk, self.layer.W[:, :, i, j], share_of_x, whole)
                dxp[:, :, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s] += pixels
