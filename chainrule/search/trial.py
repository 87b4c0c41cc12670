"""One trial: the book's validation split, training a trial's settings and its record.

:func:`split_validation` holds out part of the training data (never the test set);
:func:`run_trial` trains one trial's settings on the rest and returns its record (the
settings, the final and per-epoch validation accuracy, the time, where it ran). Nothing
here prints or writes a file.
"""

from __future__ import annotations

import contextlib
import math
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, ShapeError, TrainingError
from chainrule.train import History, Resume, fit

__all__ = ["Build", "Data", "run_trial", "split_validation"]

# ((x_train, t_train), (x_val, t_val)), and what turns a trial's settings into
# (network, optimizer).
Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Build = Callable[[dict[str, Any]], tuple[Any, Any]]


def split_validation(x: np.ndarray, t: np.ndarray, fraction: float = 0.2, seed: int = 0) -> Data:
    """``((x_train, t_train), (x_val, t_val))``: the book's hold-out, ``int(len(x) *
    fraction)`` samples drawn at random (by ``seed``) for validation, the rest to train on.

    Give it training data only: the test set is for the end, never for choosing."""
    if not 0 < fraction < 1:
        raise ArgumentError(f"the validation share must lie between 0 and 1, got {fraction!r}")
    if len(x) != len(t):
        raise ShapeError(f"validation split: {len(x)} samples but {len(t)} labels")
    held_out = int(len(x) * fraction)
    if held_out < 1 or held_out >= len(x):
        raise ShapeError(
            f"validation split: {fraction:g} of {len(x)} samples leaves no "
            + ("validation" if held_out < 1 else "training")
            + " data"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = np.sort(order[:held_out]), np.sort(order[held_out:])
    return (x[train], t[train]), (x[val], t[val])


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a diverged run's metrics become null."""
    return value if value is not None and math.isfinite(value) else None


def _worker_name() -> str | None:
    """The address of the Dask worker running this, or None outside one."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:
        return None


def run_trial(
    settings: dict[str, Any], data: Data, build: Build, *, blas_threads: int | None = 1
) -> dict[str, Any]:
    """Train one trial and measure it on the validation data: the trial's record.

    ``build(settings)`` returns ``(network, optimizer)``; :func:`chainrule.train.fit`
    then trains for ``settings["epochs"]`` epochs with ``settings["batch_size"]`` and
    ``settings["seed"]``, evaluating on the validation data at each epoch's end. The
    record holds the settings, ``val_accuracy`` and ``val_loss`` after the last epoch,
    ``train_accuracy``, both accuracies per epoch, the seconds taken and where it ran.

    ``blas_threads`` (1 by default) holds BLAS to that many threads for the whole trial,
    training and evaluation: trials run side by side, one per core, and a trial gives the
    same numbers wherever it runs (in this process or on any worker). ``None`` leaves the
    training step's own choice (:mod:`chainrule.blas`). A trial whose loss stops being
    finite is recorded with a ``val_accuracy`` of None and the message in ``diverged``.
    """
    (x_train, t_train), (x_val, t_val) = _aligned(data)
    limit = _blas_limit(blas_threads)
    history, diverged = History(), None
    started = time.perf_counter()
    with limit:
        network, optimizer = build(settings)
        try:
            fit(
                network,
                optimizer,
                x_train,
                t_train,
                x_val,
                t_val,
                batch_size=settings.get("batch_size", 100),
                epochs=settings["epochs"],
                seed=settings["seed"],
                threads=blas_threads,
                resume=Resume(history),  # what it learnt, kept if it diverges
            )
        except TrainingError as error:
            diverged = str(error)
    seconds = time.perf_counter() - started
    return _trial_record(settings, history, diverged, seconds)


def _aligned(data: Data) -> Data:
    """``data`` with every array aligned and C-contiguous, copied where it is not.

    Arrays that came over the network may start at any byte (a Dask worker's scattered
    data does): NumPy's take() and BLAS run many times slower on misaligned memory, so
    such an array is copied (once per trial).
    """
    (x_train, t_train), (x_val, t_val) = (
        tuple(np.require(a, requirements=("ALIGNED", "C_CONTIGUOUS")) for a in pair)
        for pair in data
    )
    return (x_train, t_train), (x_val, t_val)


def _blas_limit(blas_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """A context that holds BLAS to ``blas_threads`` threads; None holds nothing."""
    if blas_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=blas_threads, user_api="blas")


def _trial_record(
    settings: dict[str, Any], history: History, diverged: str | None, seconds: float
) -> dict[str, Any]:
    """The results file's record of a trial: its settings, its metrics, where it ran."""
    last = history.evaluations[-1] if history.evaluations else None
    return {
        **settings,
        "val_accuracy": None if diverged or last is None else last.test_accuracy,
        "val_loss": None if diverged or last is None else _finite(last.test_loss),
        "train_accuracy": None if diverged or last is None else last.train_accuracy,
        "val_accuracies": [e.test_accuracy for e in history.evaluations],
        "train_accuracies": [e.train_accuracy for e in history.evaluations],
        "diverged": diverged,
        "seconds": round(seconds, 3),
        "host": socket.gethostname(),
        "worker": _worker_name(),
    }
