"""The windows that convolutions and poolings slide over images stored channels last:
output sizes, padding, strided views of the windows, and the filters laid out as the right
side of a product whose rows are windows (:mod:`chainrule.engine.conv`)."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule.blas import share, worker_count
from chainrule.engine.buffers import Buffers, channels_last

__all__ = [
    "copy_shared",
    "output_width",
    "padded",
    "place_filters",
    "positions",
    "rows_channels_last",
    "strided_view",
    "window_view",
]

# Columns of a product up to this many (filters; channels for dx): float32 products
# compute two adjacent outputs a row
_NARROW_FILTERS = 16
# Copies smaller than this run on the calling thread: waking the workers costs more
_SHARED_COPY_BYTES = 1 << 16


def copy_shared(out: np.ndarray, src: np.ndarray) -> None:
    """``np.copyto(out, src)`` for arrays of one shape, cut along the first axis at least
    as long as the step's worker count and shared among the workers (windows copied into
    a product's rows, on one thread, left the other core idle). A copy is exact, so the
    cuts may follow the worker count."""
    count = worker_count()
    axis = next((i for i, size in enumerate(out.shape) if size >= count), None)
    if count == 1 or axis is None or out.nbytes < _SHARED_COPY_BYTES:
        np.copyto(out, src)
        return
    size, before = out.shape[axis], (slice(None),) * axis
    cuts = [i * size // count for i in range(count + 1)]
    parts = [(*before, slice(i, j)) for i, j in itertools.pairwise(cuts)]
    share([partial(np.copyto, out[part], src[part]) for part in parts])


def output_width(dtype: np.dtype, columns: int, even: bool) -> int:
    """How many adjacent output positions a row of a convolution's product computes: two
    for a float32 product of few columns (and an even count of positions), which runs
    faster twice as wide despite the wider windows' extra multiplications; else one."""
    return 2 if dtype == np.float32 and columns <= _NARROW_FILTERS and even else 1


def place_filters(filters: np.ndarray, R: int, stride: int, out: np.ndarray) -> None:
    """Write ``filters`` (FO, FI, FH, FW) into ``out`` (FH·width·FI, R·FO), the right side
    of a product whose rows are windows (fh, fw, fi) that R adjacent outputs read: column
    block r holds the filters at window columns fw + r·stride, zeros elsewhere."""
    FO, FI, FH, FW = filters.shape
    if R > 1:
        out[...] = 0
    blocks = out.reshape(FH, (R - 1) * stride + FW, FI, R, FO)
    for r in range(R):
        np.copyto(blocks[:, r * stride : r * stride + FW, :, r], filters.transpose(2, 3, 1, 0))


def positions(h: int, w: int, fh: int, fw: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1


def padded(x: np.ndarray, pad: int, value: float, buf: Buffers) -> np.ndarray:
    """x with ``pad`` values of ``value`` around each image, in a buffer whose border is
    written once; x itself without padding."""
    if not pad:
        return x
    n, c, h, w = x.shape
    xp = buf.images("padded", (n, c, h + 2 * pad, w + 2 * pad), x.dtype, fill=value)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    return xp


def window_view(
    xp: np.ndarray,
    fh: int,
    fw: int,
    stride: int,
    R: int,
    P: int | None,
    grid: tuple[int, ...],
) -> np.ndarray:
    """The windows of padded images xp as a view (*grid, fh, fw, C), each read by R
    adjacent outputs: for grid (N, oh, ow / R) those from output (y, R·x) on; for (P,
    P / R, N, ph, pw) those from row P·ph + i, column P·pw + R·j of pooling window
    (ph, pw). A window's (fw, c) run is contiguous in images stored channels last."""
    sN, sC, sH, sW = xp.strides
    if P is None:
        steps = (sN, stride * sH, R * stride * sW)
    else:
        steps = (stride * sH, R * stride * sW, sN, P * stride * sH, P * stride * sW)
    shape = (*grid, fh, fw, xp.shape[1])
    return strided_view(xp, shape, (*steps, sH, sW, sC))


def strided_view(
    x: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0
) -> np.ndarray:
    """A read-only view of x's memory from ``offset`` bytes on (only where that memory is
    one block), as ``as_strided`` makes it. Built directly where it is one block, C- or
    channels-last-ordered as the engine's images are: as_strided goes through an array
    interface dict, far slower, twice a chunk (docs/performance.md)."""
    block = x.transpose(0, 2, 3, 1) if x.ndim == 4 and not x.flags.c_contiguous else x
    if not block.flags.c_contiguous:
        if offset:
            raise ValueError("an offset into memory that is not one block")
        return as_strided(x, shape, strides, writeable=False)
    view = np.ndarray(shape, x.dtype, block, offset, strides)
    view.flags.writeable = False
    return view


def rows_channels_last(dy: np.ndarray, buf: Buffers, name: str) -> np.ndarray:
    """Images dy (N, C, H, W) as rows (N·H·W, C): free when stored channels last."""
    n, c, h, w = dy.shape
    if channels_last(dy):
        return dy.transpose(0, 2, 3, 1).reshape(-1, c)
    rows = buf.get(name, (n, h, w, c), dy.dtype)
    np.copyto(rows, dy.transpose(0, 2, 3, 1))
    return rows.reshape(-1, c)
