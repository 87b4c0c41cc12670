"""Pictures as objects a notebook shows: what :func:`~chainrule.viz.diagram.render`,
:func:`~chainrule.viz.curves.plot_history` and :func:`~chainrule.viz.weights.plot_weights`
return when given no path.

A :class:`Picture` holds the drawn bytes and their format; Jupyter (IPython's display
formatter) shows it through ``_repr_svg_`` or ``_repr_png_``, and :meth:`Picture.save`
writes it to a file atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from chainrule.errors import ArgumentError
from chainrule.fileio import atomic_write

__all__ = ["Picture", "figure_output"]


class Picture:
    """A drawn picture: ``data`` (bytes) in ``format``, ``"svg"`` or ``"png"``."""

    def __init__(self, data: bytes, format: str) -> None:
        if format not in ("svg", "png"):
            raise ArgumentError(f"a Picture is svg or png, got {format!r}")
        self.data, self.format = data, format

    def _repr_svg_(self) -> str | None:
        return self.data.decode("utf-8") if self.format == "svg" else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the picture to ``path``, whose suffix must be its format; return the path."""
        path = Path(path)
        if path.suffix.lower().lstrip(".") != self.format:
            raise ArgumentError(f"cannot save a {self.format} picture as {path.name!r}")
        with atomic_write(path) as handle:
            handle.write(self.data)
        return path

    def __repr__(self) -> str:
        return f"<Picture: {self.format}, {len(self.data):,} bytes>"


def figure_output(
    fig: Any, path: str | os.PathLike[str] | None, fmt: str, *, dpi: int
) -> Path | Picture:
    """A matplotlib figure written to ``path`` (atomically, in ``fmt``), returning the path;
    with no path, the figure as a PNG :class:`Picture`."""
    if path is None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return Picture(buffer.getvalue(), "png")
    with atomic_write(Path(path)) as handle:
        fig.savefig(handle, format=fmt, dpi=dpi)
    return Path(path)
