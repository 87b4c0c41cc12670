"""Running a search: the trials its results file lacks, in this process or on a cluster.

:func:`run_search` appends each finished trial to the results file as it finishes, so an
interrupted search keeps them and running it again runs only the rest. Like
:func:`chainrule.train.fit`, nothing here prints: each finished trial is reported through
``on_trial``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from chainrule.errors import SearchError
from chainrule.search.cluster import _within, answer_seconds
from chainrule.search.results import append_result, rank, read_results, results_lock
from chainrule.search.space import Search
from chainrule.search.trial import Build, Data, run_trial

__all__ = ["run_search"]


def run_search(
    search: Search,
    trials: int,
    data: Data,
    build: Build,
    results: str | os.PathLike[str],
    *,
    client: Any = None,
    blas_threads: int | None = 1,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run trials ``0 .. trials-1`` of ``search`` that the results file does not hold yet;
    return every record of the search, ranked (:func:`rank`).

    Each finished trial is appended to ``results`` (one JSON line, :func:`append_result`)
    before ``on_trial(record)`` is called; an interrupted search (Ctrl-C, a crash, a
    killed process) keeps them all, and running it again runs only the rest. Without
    ``client`` the trials run one after another in this process; with a Dask client, in
    parallel on its workers, the data sent to each worker once (``scatter``), the records
    written here as the trials finish, in the order they finish.
    """
    with results_lock(results):
        return _run_trials(search, trials, data, build, results, client, blas_threads, on_trial)


def _run_trials(search, trials, data, build, results, client, blas_threads, on_trial):
    done = read_results(results, search)
    finished = {record["trial"] for record in done}
    todo = [number for number in range(trials) if number not in finished]
    records = list(done)

    def keep(number: int, record: dict[str, Any]) -> None:
        record = {"search_id": search.id, "trial": number, **record}
        record["search"] = search.describe()
        append_result(results, record)
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    if client is None:
        for number in todo:
            keep(number, run_trial(search.trial(number), data, build, blas_threads=blas_threads))
    elif todo:
        _run_on_cluster(client, search, todo, data, build, blas_threads, keep)
    return rank(records)


def _run_on_cluster(client, search, todo, data, build, blas_threads, keep) -> None:
    seconds = answer_seconds()
    # Sending the data may take longer than an answer: a second more per 10 MB.
    sending = seconds + sum(a.nbytes for pair in data for a in pair) / 1e7
    shared = _within(
        sending,
        "the cluster",
        lambda: client.scatter(data, broadcast=True),
        " while taking the training data",
    )
    pending = {
        client.submit(
            run_trial,
            search.trial(number),
            shared,
            build,
            blas_threads=blas_threads,
            key=f"chainrule-search-{search.id}-trial-{number}",
        ): number
        for number in todo
    }
    try:
        for future in _as_finished(client, list(pending), seconds):
            number = pending.pop(future)
            try:
                record = future.result()
            except Exception as error:
                failure = _trial_failed(number, error)
                if failure is error:
                    raise
                raise failure from None
            keep(number, record)
    finally:
        # Stopped by a failed trial or Ctrl-C: keep the trials that finished meanwhile.
        for future, number in pending.items():
            if future.status == "finished":
                with contextlib.suppress(Exception):
                    keep(number, future.result(timeout=10))
        with contextlib.suppress(Exception):
            _within(seconds, "the Dask scheduler", lambda: client.cancel(list(pending)))


def _as_finished(client: Any, futures: list[Any], seconds: float) -> Iterator[Any]:
    """The futures in the order they finish. A trial may take any time, but the scheduler
    must answer: after each ``seconds`` without a finished trial, it is asked for a sign of
    life (SearchError if it gives none within ``seconds``)."""
    from distributed import as_completed

    finished = as_completed(futures, loop=client.loop)
    heard = time.monotonic()
    while not finished.is_empty():
        ready = finished.next_batch(block=False)
        if ready:
            heard = time.monotonic()
            yield from ready
        elif time.monotonic() - heard > seconds:
            _within(
                seconds,
                "the Dask scheduler",
                lambda: client.scheduler_info(n_workers=0),
                "; the finished trials are kept",
            )
            heard = time.monotonic()
        else:
            time.sleep(0.05)


def _trial_failed(number: int, error: Exception) -> Exception:
    """A trial's failure on the cluster as chainrule reports it (its own errors as they are)."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        return SearchError(
            f"trial {number} ended the workers that ran it, one after another "
            "(out of memory?); the finished trials are kept"
        )
    if isinstance(error, FutureCancelledError):
        return SearchError(
            f"the cluster dropped trial {number} (did its scheduler stop?); "
            "the finished trials are kept"
        )
    return error
