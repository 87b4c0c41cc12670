"""The book's picture of a hyperparameter search: the best trials' accuracy curves.

Chapter 6 ends its random search with a grid of the 20 best trials, five to a row, each
panel titled ``Best-k``: the validation accuracy per epoch as a solid line, the training
accuracy dashed, on a 0-1 scale. :func:`plot_search` draws the same grid from the
records of :mod:`chainrule.search` (matplotlib's object API, no display needed).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from chainrule.errors import ArgumentError
from chainrule.fileio import atomic_write
from chainrule.viz.curves import FORMATS

__all__ = ["plot_search"]

_COLUMNS = 5
_SHORT = {"lr": "lr", "weight_decay": "wd", "batch_size": "batch"}


def _value(value: Any) -> str:
    return f"{value:.2g}" if isinstance(value, float) else str(value)


def plot_search(
    records: list[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    top: int = 20,
    searched: list[str] | None = None,
    title: str = "",
) -> Path:
    """Draw the first ``top`` of ``records`` (ranked, best first) to ``path`` (.png, .svg
    or .pdf); each panel is titled with its rank, its validation accuracy and the
    ``searched`` hyperparameters' values. Return the path."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArgumentError(f"--plot: cannot draw {path.name!r}; use a .png, .svg or .pdf name")
    figure = _figure(records, top, searched or [], title)
    with atomic_write(path) as handle:
        figure.savefig(handle, format=fmt, dpi=110)
    return path


def _figure(records: list[dict[str, Any]], top: int, searched: list[str], title: str) -> Any:
    """The grid of panels, as a matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = records[:top]
    rows = max(1, math.ceil(len(shown) / _COLUMNS))
    fig = Figure(figsize=(2.6 * _COLUMNS, 2.3 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, _COLUMNS, squeeze=False, sharey=True)
    for place, ax in enumerate(axes.flat):
        if place >= len(shown):
            ax.set_axis_off()
            continue
        record = shown[place]
        val, train = record["val_accuracies"], record["train_accuracies"]
        epochs = range(1, len(val) + 1)
        dot = "o" if len(val) == 1 else None  # one epoch: a line of one point shows nothing
        ax.plot(epochs, val, color="tab:blue", linewidth=1.5, marker=dot, label="validation")
        ax.plot(
            epochs,
            train,
            color="tab:orange",
            linestyle="--",
            linewidth=1.2,
            marker=dot,
            label="train",
        )
        accuracy = record["val_accuracy"]
        result = "diverged" if accuracy is None else f"val acc {accuracy:.3f}"
        values = ", ".join(f"{_SHORT.get(n, n)} {_value(record[n])}" for n in searched)
        ax.set_title(f"Best-{place + 1}: {result}\n{values}", fontsize=8)
        ax.set_ylim(0.0, 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # no epoch 1.5
        ax.grid(alpha=0.3)
        if place % _COLUMNS == 0:
            ax.set_ylabel("accuracy")
        if place >= len(shown) - _COLUMNS:
            ax.set_xlabel("epoch")
    axes.flat[0].legend(loc="lower right", fontsize=7)
    fig.suptitle(
        title or f"The {len(shown)} best of {len(records)} trials, by validation accuracy",
        fontsize=11,
    )
    return fig
