"""The helpers of the book's ``common/util.py``: im2col and col2im for convolution and
pooling, the output size of a sliding window, and the two that chapter 6's scripts use
(``smooth_curve``, ``shuffle_dataset``).

im2col lays every window of a batch of images out as one row of a matrix, so that a
convolution is one matrix product (chapter 7); col2im is its adjoint, adding each row
back onto the pixels it came from, which is what backward needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "add_windows",
    "col2im",
    "conv_output_size",
    "im2col",
    "image_windows",
    "shuffle_dataset",
    "smooth_curve",
]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """How many positions a window of ``filter_size`` takes along an axis of ``input_size``
    padded by ``pad`` on both sides, moving ``stride`` at a time: ``(in + 2·pad − f) // s + 1``.

    An integer (the book's returns a float, fractional where the stride does not divide
    evenly): positions that would reach past the padded edge are not taken.
    """
    return (input_size + 2 * pad - filter_size) // stride + 1


def image_windows(
    input_data: np.ndarray,
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
    *,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Every ``filter_h``×``filter_w`` window of images (N, C, H, W), ``stride`` apart, as a
    view (N, C, filter_h, filter_w, out_h, out_w): entry ``[n, c, y, x, i, j]`` is pixel
    ``(i·stride + y, j·stride + x)`` of channel c of image n, padded by ``pad`` on every
    side with ``pad_value``. The book's im2col builds this array by a loop over (y, x).
    """
    padding = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    img = np.pad(input_data, padding, constant_values=pad_value) if pad else input_data
    # (N, C, H', W', filter_h, filter_w); the step keeps every stride-th position.
    windows = sliding_window_view(img, (filter_h, filter_w), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.transpose(0, 1, 4, 5, 2, 3)


def add_windows(
    windows: np.ndarray, input_shape: tuple[int, ...], stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The adjoint of :func:`image_windows`: adds every entry of ``windows`` (N, C,
    filter_h, filter_w, out_h, out_w) onto the pixel of ``input_shape`` (N, C, H, W) it
    was taken from. A pixel in several windows receives the sum; padding is cut off.
    Returns a new array of ``input_shape``.
    """
    n, channels, height, width = input_shape
    _, _, filter_h, filter_w, out_h, out_w = windows.shape
    # The image laid out in memory as the windows are, so that each addition walks both
    # in step.
    img = np.zeros_like(windows[:, :, 0, 0], shape=(n, channels, height + 2 * pad, width + 2 * pad))
    # One addition per position inside the window (filter_h·filter_w of them), each over
    # all samples, channels and window positions at once: overlapping windows add up.
    for y in range(filter_h):
        for x in range(filter_w):
            img[:, :, y : y + stride * out_h : stride, x : x + stride * out_w : stride] += windows[
                :, :, y, x
            ]
    return img[:, :, pad : pad + height, pad : pad + width]


def im2col(
    input_data: np.ndarray,
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
    *,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Images (N, C, H, W) as a matrix (N·out_h·out_w, C·filter_h·filter_w): one row per
    window position, holding that window's pixels of every channel.

    Rows run over samples, then output rows, then output columns; a row's columns over
    channels, then the window's rows and columns, as the book's. ``pad_value`` fills the
    padding (0, the book's).
    """
    windows = image_windows(input_data, filter_h, filter_w, stride, pad, pad_value=pad_value)
    channels = input_data.shape[1]
    # The reshape is the one copy.
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(-1, channels * filter_h * filter_w)


def col2im(
    col: np.ndarray,
    input_shape: tuple[int, ...],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """The adjoint of :func:`im2col`: adds every entry of ``col`` back onto the pixel of
    ``input_shape`` (N, C, H, W) it was copied from. A pixel in several windows receives
    the sum; padding is cut off. Returns a new array of ``input_shape``.
    """
    n, channels, height, width = input_shape
    out_h = conv_output_size(height, filter_h, stride, pad)
    out_w = conv_output_size(width, filter_w, stride, pad)
    windows = col.reshape(n, out_h, out_w, channels, filter_h, filter_w)
    return add_windows(windows.transpose(0, 3, 4, 5, 1, 2), input_shape, stride, pad)


def shuffle_dataset(x: Any, t: Any, *, seed: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``t`` in the same random order (for a validation split, chapter 6).

    ``seed`` is anything ``np.random.default_rng`` takes; the book's draws from NumPy's
    global generator.
    """
    order = np.random.default_rng(seed).permutation(len(x))
    return np.asarray(x)[order], np.asarray(t)[order]


def smooth_curve(x: Any) -> np.ndarray:
    """A noisy curve (a loss per step) smoothed for plotting, of the same length.

    A weighted moving average over 11 points, with a Kaiser window (β = 2) for weights;
    the curve is mirrored at both ends so the average is defined to the last point. The
    book's ``smooth_curve`` computes the same; a curve of 11 points or fewer is returned as
    it is.
    """
    x = np.asarray(x, dtype=np.float64)
    half = 5
    if len(x) <= 2 * half + 1:
        return x.copy()
    weights = np.kaiser(2 * half + 1, 2)
    # Ten points mirrored on each side: x[10] … x[1] before, x[-1] … x[-10] after.
    mirrored = np.concatenate([x[2 * half : 0 : -1], x, x[: -2 * half - 1 : -1]])
    return np.convolve(mirrored, weights / weights.sum(), mode="valid")[half:-half]
