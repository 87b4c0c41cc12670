"""Progress on stderr for the commands: tqdm bars where a terminal shows them, lines else."""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "say", "tqdm_class"]


def _stderr_is_a_terminal() -> bool:
    return sys.stderr.isatty()


def tqdm_class(quiet: bool):
    """tqdm's bar class, or None when --quiet, when stderr is no terminal (a bar's ``\\r``
    redraws would fill a log: the line per epoch says enough), or when tqdm (an optional
    extra) is not installed."""
    if quiet or not _stderr_is_a_terminal():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def progress_bar(total: int, initial: int, quiet: bool):
    """A training bar on stderr, or None (see tqdm_class)."""
    tqdm = tqdm_class(quiet)
    if tqdm is None:
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)


def say(bar, message: str, quiet: bool) -> None:
    """Print ``message`` (above the bar, if one is shown), unless ``quiet``."""
    if quiet:
        return
    if bar is not None:
        bar.write(message)
    else:
        print(message, flush=True)
