"""The first layer's weights as pictures: one small image per hidden unit.

Each column of ``W1`` (784 × hidden) holds the weights one hidden unit gives the 784
pixels; reshaped to 28 × 28 it shows which strokes excite the unit (red) and which
inhibit it (blue). matplotlib is imported inside :func:`plot_weights` and used through
its object API only (no pyplot, no GUI backend), as in :mod:`chainrule.viz.curves`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, ShapeError
from chainrule.viz.display import Picture, figure_output

__all__ = ["FORMATS", "plot_filters", "plot_weights", "weight_grid"]

FORMATS = ("png", "svg")
_TILE_INCHES = 0.75  # each unit's image; 50 units make a 7.5-inch-wide grid


def weight_grid(n_units: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid for ``n_units`` images (10 columns at most).

    A column count that divides ``n_units`` is preferred, so no row is left part empty:
    50 units make 5 rows of 10, 16 make 4 of 4.
    """
    if n_units < 1:
        raise ArgumentError(f"need at least one hidden unit, got {n_units}")
    square = math.ceil(math.sqrt(n_units))
    cols = next((c for c in range(square, 11) if n_units % c == 0), min(square, 10))
    return math.ceil(n_units / cols), cols


def plot_weights(
    W: Any, path: str | os.PathLike[str] | None = None, *, title: str = ""
) -> Path | Picture:
    """Draw the columns of ``W`` (pixels × hidden, e.g. 784 × 50) as a grid of images.

    Each hidden unit's weights become a side × side image (28 × 28 for MNIST), coloured
    by a diverging map centred at 0 with one scale for all units, so their strengths
    compare. Written atomically to ``path`` (.png or .svg, by extension); returns it. With
    no path, returns the drawing as a PNG :class:`~chainrule.viz.display.Picture`, which a
    notebook shows.

    Raises:
        ShapeError: ``W`` is not 2-d or its first dimension is not a square number.
        ValueError: another extension, or ``W`` holds a NaN or an infinity.
    """
    fmt = "png" if path is None else Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArgumentError(f"cannot draw {Path(path).name!r}; use a .png or .svg name")
    W, side = _square_columns(W)
    from matplotlib.figure import Figure

    rows, cols = weight_grid(W.shape[1])
    fig = Figure(
        figsize=(cols * _TILE_INCHES + 1.0, rows * _TILE_INCHES * 0.92 + (0.5 if title else 0.1)),
        layout="constrained",
    )
    fig.get_layout_engine().set(w_pad=0.04, h_pad=0.06, wspace=0.02, hspace=0.02)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = _draw_units(axes, W, side)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return figure_output(fig, path, fmt, dpi=100)


def _square_columns(W: Any) -> tuple[np.ndarray, int]:
    """``W`` as a float64 matrix whose columns are square images, and their side."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.size == 0:
        raise ShapeError(f"plot_weights: W must be 2-d (pixels, hidden), got shape {W.shape}")
    pixels = W.shape[0]
    side = math.isqrt(pixels)
    if side * side != pixels:
        raise ShapeError(
            f"plot_weights: W has {pixels} rows, not a square number of pixels, so its "
            f"columns cannot be drawn as square images (expected e.g. 784 = 28×28); got W "
            f"of shape {W.shape}"
        )
    if not np.all(np.isfinite(W)):
        raise ArgumentError("plot_weights: W holds NaN or infinite values")
    return W, side


def _draw_units(axes: Any, W: np.ndarray, side: int) -> Any:
    """Each column of ``W`` as a side × side image in one of ``axes``; return the last image
    (the colour bar's source: they all share one scale)."""
    # One colour scale for every unit, symmetric about 0 so white means a weight of 0.
    limit = float(np.abs(W).max()) or 1.0
    image = None
    for unit, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if unit >= W.shape[1]:
            ax.set_axis_off()  # the grid's last row may be part empty
            continue
        image = ax.imshow(
            W[:, unit].reshape(side, side),
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
        )
    return image


def _filter_panel(fig: Any, W: np.ndarray, label: str) -> None:
    rows, cols = weight_grid(len(W))
    if label:
        fig.suptitle(label, fontsize="medium")
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= len(W):
            ax.set_axis_off()
            continue
        # As the book's visualize_filter: the first channel, grey, each filter scaled to
        # its own range (so its pattern shows whatever its size).
        ax.imshow(W[index, 0], cmap="gray_r", interpolation="nearest")


def plot_filters(
    W: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str = "",
    before: Any = None,
) -> Path | Picture:
    """Draw convolution filters ``W`` (FN, C, FH, FW), one small grey image per filter
    (its first channel, scaled to its own range, as the book's Figure 7-24); with
    ``before`` (the same shape: e.g. the initial weights), two panels side by side,
    before and after training. Written atomically to ``path`` (.png or .svg); with no
    path, returns a PNG :class:`~chainrule.viz.display.Picture`.

    Raises:
        ShapeError: ``W`` is not 4-d, or ``before`` has another shape.
        ValueError: another extension, or a NaN or an infinity.
    """
    fmt = "png" if path is None else Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArgumentError(f"cannot draw {Path(path).name!r}; use a .png or .svg name")
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 4 or W.size == 0:
        raise ShapeError(f"plot_filters: W must be 4-d (FN, C, FH, FW), got shape {W.shape}")
    panels = [(W, "after training" if before is not None else "")]
    if before is not None:
        before = np.asarray(before, dtype=np.float64)
        if before.shape != W.shape:
            raise ShapeError(f"plot_filters: before {before.shape} and W {W.shape} differ")
        panels.insert(0, (before, "before training"))
    if not all(np.all(np.isfinite(w)) for w, _ in panels):
        raise ArgumentError("plot_filters: the weights hold NaN or infinite values")

    from matplotlib.figure import Figure

    rows, cols = weight_grid(len(W))
    width = cols * 0.55 + 0.3
    fig = Figure(
        figsize=(width * len(panels), rows * 0.55 + (0.9 if title else 0.5)),
        layout="constrained",
    )
    subfigs = fig.subfigures(1, len(panels), squeeze=False).flat
    for subfig, (weights, label) in zip(subfigs, panels):
        _filter_panel(subfig, weights, label)
    if title:
        fig.suptitle(title)
    return figure_output(fig, path, fmt, dpi=100)
