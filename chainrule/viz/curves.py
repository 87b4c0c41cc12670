"""Training curves: the loss of every step (smoothed) and the accuracy at each evaluation.

matplotlib is imported inside :func:`plot_history` and used through its object API with
no pyplot and no GUI backend, so importing chainrule never loads it and drawing works on a
machine without a display.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError
from chainrule.train import History
from chainrule.viz.display import Picture, figure_output

__all__ = ["FORMATS", "plot_history", "smooth"]

FORMATS = ("png", "svg", "pdf")


def smooth(values: list[float], window: int) -> np.ndarray:
    """Moving average over ``window`` steps; the first points average what exists so far."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_history(
    history: History, path: str | os.PathLike[str] | None = None, title: str = ""
) -> Path | Picture:
    """Draw ``history`` to ``path`` (.png, .svg or .pdf, by extension); return the path.

    With no path, return the drawing as a PNG :class:`~chainrule.viz.display.Picture`,
    which a notebook shows.
    """
    fmt = "png" if path is None else Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        names = ", ".join(f".{name}" for name in FORMATS)
        raise ArgumentError(f"cannot draw {Path(path).name!r}; use a name ending in one of {names}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    _draw_losses(loss_ax, history.losses)
    _draw_accuracies(acc_ax, history)
    if title:
        # A run's description is long; wrapped, it fits the figure's width at any length.
        fig.suptitle(textwrap.fill(title, width=110), fontsize=10)
    return figure_output(fig, path, fmt, dpi=120)


def _draw_losses(ax: Any, losses: list[float]) -> None:
    """Every step's loss, faint, and its moving average over a fiftieth of the steps."""
    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(steps) // 50)
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="each step")
    ax.plot(
        steps,
        smooth(losses, window),
        color="tab:blue",
        linewidth=1.8,
        label=f"mean of {window} steps" if window > 1 else "loss",
    )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("Loss per step")
    ax.grid(alpha=0.3)
    ax.legend()


def _draw_accuracies(ax: Any, history: History) -> None:
    """The training accuracy at each evaluation, and the test accuracy where there is one."""
    from matplotlib.ticker import MaxNLocator

    evals = history.evaluations
    epochs = [e.epoch for e in evals]
    ax.plot(
        epochs,
        [e.train_accuracy for e in evals],
        marker="o",
        markersize=3,
        color="tab:green",
        label="train",
    )
    if evals and evals[0].test_accuracy is not None:
        ax.plot(
            epochs,
            [e.test_accuracy for e in evals],
            marker="s",
            markersize=3,
            color="tab:orange",
            label="test",
        )
    ax.set_xlabel("epoch")
    # Epochs are counted in whole numbers; the default locator puts ticks at 2.5 and 7.5.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
