"""Random search over training hyperparameters, as chapter 6 of the book does it.

The book draws ``lr = 10**U(-6, -2)`` and ``weight decay = 10**U(-8, -4)`` a hundred
times, trains each draw on the training data less a held-out 20%, and ranks the draws by
their accuracy on that held-out validation set (the test set is never used to choose).
This module does the same, for any of ``chainrule train``'s hyperparameters:

* a *space* maps each hyperparameter to a :class:`LogUniform` range, a :class:`Choice`
  or a fixed value; :meth:`Search.trial` turns a trial's number into its settings, a pure
  function of ``(seed, number)``, so a trial is the same whichever process runs it, in
  whatever order, in whichever run of a resumed search;
* :func:`run_trial` trains one trial and returns its record (the settings, the final and
  per-epoch validation accuracy, the time);
* a results file of JSON lines, one record per finished trial (:func:`read_results`,
  which checks every record, :func:`append_result`), makes a search resumable: trials
  already in it are not run again; :func:`results_lock` keeps it to one search at a time;
* :func:`run_search` runs the trials left, one after another in this process, or in
  parallel on a Dask cluster (:func:`dask_client`: worker processes on this machine,
  behind TLS, or a scheduler's workers anywhere, every wait on it bounded), and
  :func:`rank` orders the records, best first.

Like :func:`chainrule.train.fit`, nothing here prints: :func:`run_search` reports each
finished trial through ``on_trial``. Dask (the ``search`` extra) is imported only when a
cluster is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, DataError, SearchError, ShapeError, TrainingError
from chainrule.fileio import fsync_directory
from chainrule.train import History, Resume, fit

__all__ = [
    "BOOK_SPACE",
    "Choice",
    "LogUniform",
    "Search",
    "append_result",
    "dask_client",
    "rank",
    "read_results",
    "results_lock",
    "run_search",
    "run_trial",
    "split_validation",
]

Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Build = Callable[[dict[str, Any]], tuple[Any, Any]]


@dataclass(frozen=True)
class LogUniform:
    """A number drawn as ``10**U(log10 low, log10 high)``: each power of ten between ``low``
    and ``high`` equally likely, the book's way of drawing a learning rate. With
    ``integer=True`` the draw is rounded to an integer in ``[low, high]``."""

    low: float
    high: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low > 0):
            raise ArgumentError(f"a log-uniform range needs 0 < low <= high, got {self}")
        if self.low > self.high:
            raise ArgumentError(f"a log-uniform range needs 0 < low <= high, got {self}")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ArgumentError(f"no integer lies in the range {self}")

    def sample(self, rng: np.random.Generator) -> float | int:
        value = 10 ** rng.uniform(math.log10(self.low), math.log10(self.high))
        if self.integer:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        return float(min(max(value, self.low), self.high))

    def __str__(self) -> str:
        number = (lambda v: str(int(v))) if self.integer else repr
        return f"{number(self.low)}..{number(self.high)}"


@dataclass(frozen=True)
class Choice:
    """One of ``options``, each equally likely (numbers, names or other JSON values)."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) == 0:
            raise ArgumentError("a choice needs at least one option")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def __str__(self) -> str:
        return ",".join(repr(o) if isinstance(o, float) else str(o) for o in self.options)


# The book's search (chapter 6): the learning rate and the weight decay λ, log-uniform.
BOOK_SPACE: dict[str, Any] = {
    "lr": LogUniform(1e-6, 1e-2),
    "weight_decay": LogUniform(1e-8, 1e-4),
}


def _describe(value: Any) -> Any:
    return str(value) if isinstance(value, (LogUniform, Choice)) else value


@dataclass(frozen=True)
class Search:
    """What a search samples and how each trial trains, which together name its results.

    ``space`` maps a hyperparameter's name (those of ``chainrule train``, with
    underscores: ``lr``, ``weight_decay``, ``hidden``, ``optimizer``, ``batch_size`` ...)
    to a :class:`LogUniform`, a :class:`Choice` or a fixed value. ``seed`` chooses the
    validation split and every trial's draws; ``validation`` is the share of the training
    data held out; ``dataset`` only labels the records (the caller loads the data).
    """

    space: Mapping[str, Any]
    epochs: int
    seed: int = 0
    validation: float = 0.2
    dataset: str = "mnist-5k"
    _id: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ArgumentError(f"epochs must be a positive integer, got {self.epochs!r}")
        reserved = {"epochs", "seed", "dataset"} & set(self.space)
        if reserved:
            raise ArgumentError(
                f"{', '.join(sorted(reserved))}: set by the search, not in its space"
            )
        if not 0 < self.validation < 1:
            raise ArgumentError(f"validation must lie between 0 and 1, got {self.validation!r}")
        text = json.dumps(self.describe(), sort_keys=True)
        object.__setattr__(self, "_id", hashlib.sha256(text.encode()).hexdigest()[:12])

    def describe(self) -> dict[str, Any]:
        """The search as plain JSON values: ranges as text, ``'1e-06..0.01'``, ``'sgd,adam'``."""
        return {
            "space": {name: _describe(value) for name, value in sorted(self.space.items())},
            "epochs": self.epochs,
            "seed": self.seed,
            "validation": self.validation,
            "dataset": self.dataset,
        }

    @property
    def id(self) -> str:
        """12 hex digits naming this search: its records carry it, another's are refused."""
        return self._id

    def trial(self, number: int) -> dict[str, Any]:
        """Trial ``number``'s settings: its own training ``seed``, one draw of every range
        (in name order), the fixed values, ``epochs`` and ``dataset``.

        A pure function of ``(seed, number)`` and the space: the generator of trial ``n``
        is seeded with ``[seed, n]``, so no trial depends on which ran before it.
        """
        rng = np.random.default_rng([self.seed, number])
        settings: dict[str, Any] = {"dataset": self.dataset, "seed": int(rng.integers(2**31))}
        for name in sorted(self.space):
            value = self.space[name]
            settings[name] = value.sample(rng) if isinstance(value, (LogUniform, Choice)) else value
        settings["epochs"] = self.epochs
        return settings

    def searched(self) -> list[str]:
        """The names of the hyperparameters drawn from a range or a choice, in name order."""
        return [n for n in sorted(self.space) if isinstance(self.space[n], (LogUniform, Choice))]


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


# --------------------------------------------------------------------------- results file

# A record holds two accuracies per epoch, a few KB for the book's 50 epochs: a line this
# long is no record, and reading on (a file of zeros, say) would only fill memory.
MAX_RECORD_BYTES = 16 * 2**20


def _open_results(path: Path, flags: int) -> int:
    """A descriptor of the results file, refused unless it is a regular file. (O_NONBLOCK:
    opening a FIFO must not wait for a writer; on a regular file it changes nothing.)"""
    fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(
            f"{path}: not a regular file; a search's results go to a file it can append "
            "to and read back"
        )
    return fd


def read_results(path: str | os.PathLike[str], search: Search | None = None) -> list[dict]:
    """The records in a results file (none if it does not exist), in the file's order, one
    per trial (a trial written twice keeps its first record).

    Each line must be a record as :func:`run_search` writes it; the first that is not
    raises DataError naming its line and what is wrong. With ``search``, a record of another
    search raises DataError naming what differs (one file holds one search), and a record
    whose settings are not those of ``search.trial(its number)`` is refused. A last line cut
    short (a crash in the middle of an append, which :func:`append_result` makes all but
    impossible) is not a finished trial and is skipped.
    """
    path = Path(path)
    try:
        fd = _open_results(path, os.O_RDONLY)
    except FileNotFoundError:
        return []
    records: dict[int, dict] = {}
    with os.fdopen(fd, "rb") as handle:
        number = 0
        while line := handle.readline(MAX_RECORD_BYTES + 1):
            number += 1
            if len(line) > MAX_RECORD_BYTES:
                raise DataError(f"{path}, line {number}: longer than any record")
            record = _parse_line(path, number, line)
            if record is None:
                continue
            if search is not None and isinstance(record, dict):
                _refuse_another_search(path, number, record, search)
            problem = _record_problem(record, search)
            if problem is not None:
                raise DataError(f"{path}, line {number}: {problem}")
            records.setdefault(record["trial"], record)
    return list(records.values())


def _parse_line(path: Path, number: int, line: bytes) -> dict | None:
    """The JSON value of one line; None for a blank line or the cut-short last one."""
    if not line.strip():
        return None
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}, line {number}: not text, so no results file") from None
    except (ValueError, RecursionError):  # bad JSON, nested too deep, a 5000-digit number
        if not line.endswith(b"\n"):  # the last line, without its newline: cut short
            return None
        raise DataError(f"{path}, line {number}: not a JSON record") from None


def _short(value: Any, quote: bool = True) -> str:
    """A value as a message shows it: its JSON (a text unquoted, unless ``quote``), at most
    40 characters."""
    if isinstance(value, str) and not quote:
        text = value
    elif isinstance(value, (str, list, dict)):
        text = json.dumps(value)
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


# What each field of a record must hold, and how to say it.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "val_accuracy": (lambda v: v is None or _is_fraction(v), "null or a number from 0 to 1"),
    "train_accuracy": (lambda v: v is None or _is_fraction(v), "null or a number from 0 to 1"),
    "val_loss": (lambda v: v is None or _is_number(v), "null or a number"),
    "val_accuracies": (
        lambda v: isinstance(v, list) and all(_is_fraction(a) for a in v),
        "a list of numbers from 0 to 1",
    ),
    "train_accuracies": (
        lambda v: isinstance(v, list) and all(_is_fraction(a) for a in v),
        "a list of numbers from 0 to 1",
    ),
    "diverged": (lambda v: v is None or isinstance(v, str), "null or a message"),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a number of seconds"),
    "dataset": (lambda v: isinstance(v, str), "a name"),
    "epochs": (lambda v: _is_int(v) and v >= 1, "a positive whole number"),
    "seed": (_is_int, "a whole number"),
}


def _record_problem(record: Any, search: Search | None) -> str | None:
    """What is wrong with one line's record, or None if it is a trial record (of ``search``,
    if given) that a search can rank, print and plot."""
    if not isinstance(record, dict):
        return "not a trial record of chainrule search"
    trial, search_id = record.get("trial"), record.get("search_id")
    if not (_is_int(trial) and trial >= 0 and isinstance(search_id, str)):
        return "not a trial record of chainrule search (no trial number and search_id)"
    for name, (valid, meaning) in _FIELDS.items():
        if name not in record:
            return f"trial {trial} has no {name}"
        if not valid(record[name]):
            return f"trial {trial}'s {name} is {_short(record[name])}, not {meaning}"
    val, train = record["val_accuracies"], record["train_accuracies"]
    if len(val) != len(train):
        return f"trial {trial} has {len(val)} validation accuracies but {len(train)} training ones"
    if search is not None:
        for name, value in search.trial(trial).items():
            found = record.get(name)
            # type() too: 1.0 == 1 == True, but `--hidden 1.0` is not a width
            if type(found) is not type(value) or found != value:
                return (
                    f"trial {trial}'s {name} is {_short(found)}, but this search's trial "
                    f"{trial} has {_short(value)}"
                )
    return None


def _refuse_another_search(path: Path, number: int, record: dict, search: Search) -> None:
    """DataError if the record is of another search than ``search``, naming what differs."""
    search_id = record.get("search_id")
    if search_id == search.id:
        return
    theirs = record.get("search")
    differences = _differences(theirs, search.describe()) if isinstance(theirs, dict) else []
    raise DataError(
        f"{path} holds the trials of another search (line {number}: "
        + ("; ".join(differences) if differences else f"search {_short(search_id, False)}")
        + "): give the same options to continue it, or another results file"
    )


def _differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What differs between two searches' descriptions: ``'epochs 3 there, 4 here'`` (the
    first four, values cut to a readable length)."""

    def flat(description: dict[str, Any]) -> dict[str, Any]:
        space = description.get("space")
        space = space if isinstance(space, dict) else {}
        rest = {k: v for k, v in description.items() if k != "space"}
        return {**{str(k).replace("_", " "): v for k, v in space.items()}, **rest}

    there, here = flat(theirs), flat(ours)
    unset = object()

    def shown(side: dict[str, Any], name: str) -> str:
        return "unset" if side.get(name, unset) is unset else _short(side[name], quote=False)

    found = [
        f"{name[:40]} {shown(there, name)} there, {shown(here, name)} here"
        for name in sorted(set(there) | set(here))
        if there.get(name, unset) != here.get(name, unset)
    ]
    return found[:4] + ([f"{len(found) - 4} more"] if len(found) > 4 else [])


def append_result(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append ``record`` to a results file as one JSON line, durably.

    The line goes out in a single ``write`` on a file opened for appending, then fsync:
    a process killed at any moment leaves the file with or without the whole line, never
    part of it. (Only a crash of the machine in mid-write could cut a line; such a last
    line is removed here before the next one is written, as :func:`read_results` skips it.)
    """
    path = Path(path)
    line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
    created = not path.exists()
    fd = _open_results(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            tail_start = _last_line_start(fd, size)
            tail = os.pread(fd, size - tail_start, tail_start)
            try:
                json.loads(tail)
            except ValueError:
                os.ftruncate(fd, tail_start)  # the cut-short line of a crash
            else:
                line = b"\n" + line  # a complete record that lacks its newline
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(path.parent)


def _last_line_start(fd: int, size: int) -> int:
    """The offset just after the file's last newline (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


# The paths of the results files this process holds (see results_lock).
_HELD: set[str] = set()


@contextlib.contextmanager
def results_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the results file for one search: SearchError if another process holds it.

    Two searches appending to one file would both run every trial the file lacks and
    record each twice; the second is refused at once instead (an exclusive ``flock`` on
    the file, released when the search ends or its process dies). The file is created if
    need be (and removed again if the search wrote nothing to it); one that is not a
    regular file this process can append to and read back (``/dev/null``, a folder, a
    FIFO) raises DataError before any trial runs. Re-entrant within a process, so the CLI
    can hold it around :func:`run_search`, which takes it too.
    """
    path = Path(path)
    key = os.path.abspath(path)
    if key in _HELD:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to take
        fcntl = None
    created = not path.exists()
    fd = _open_results(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        if created:
            fsync_directory(path.parent)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SearchError(
                    f"{path} is in use by another search (two would run each trial twice): "
                    "wait for it to end, or give another results file"
                ) from None
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            if created and os.fstat(fd).st_size == 0:
                with contextlib.suppress(OSError):
                    path.unlink()
    finally:
        os.close(fd)


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records, best validation accuracy first (ties: the earlier trial); diverged
    trials last."""
    return sorted(
        records,
        key=lambda r: (r.get("val_accuracy") is None, -(r.get("val_accuracy") or 0), r["trial"]),
    )


# --------------------------------------------------------------------------- running


_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def scheduler_address(text: str) -> str:
    """``text`` as the address of a Dask scheduler, ``tcp://HOST:PORT`` or
    ``tls://HOST:PORT``; ArgumentError for anything else (empty, ``http://``, no port)."""
    match = _ADDRESS.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not 0 < int(match[3]) < 65536:
        raise ArgumentError(
            f"expected a Dask scheduler's address, tcp://HOST:PORT or tls://HOST:PORT, "
            f"got {_short(text)}"
        )
    return text.strip()


@dataclass(frozen=True)
class TLSFiles:
    """The user's certificates for a ``tls://`` scheduler (PEM files, as ``dask scheduler
    --tls-ca-file --tls-cert --tls-key`` takes them): the authority that signed the
    cluster's certificates, this client's certificate and its private key."""

    ca_file: str
    cert: str
    key: str


def tls_configured() -> bool:
    """Whether Dask's own configuration names a client certificate and its authority."""
    import dask

    return all(
        dask.config.get(f"distributed.comm.tls.{name}", None) for name in ("ca-file", "client.cert")
    )


def _scheduler_security(scheduler: str, tls: TLSFiles | None) -> Any:
    """The ``distributed.Security`` to reach ``scheduler`` with: the user's certificates
    for ``tls://`` (given, or in Dask's configuration), none for ``tcp://``."""
    from distributed.security import Security

    if scheduler.startswith("tcp://"):
        if tls is not None:
            raise ArgumentError(f"TLS certificates are for a tls:// scheduler, not {scheduler}")
        return Security()
    if tls is not None:
        return Security(
            tls_ca_file=tls.ca_file,
            tls_client_cert=tls.cert,
            tls_client_key=tls.key,
            require_encryption=True,
        )
    if not tls_configured():
        raise ArgumentError(
            f"{scheduler}: a tls:// scheduler needs this client's certificates (--tls-ca-file, "
            "--tls-cert, --tls-key, or Dask's distributed.comm.tls configuration)"
        )
    return Security(require_encryption=True)


def answer_seconds() -> float:
    """How long the scheduler may take to answer anything: Dask's
    ``distributed.comm.timeouts.connect`` (``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))


def _within(seconds: float, what: str, call: Callable[[], Any], hint: str = "") -> Any:
    """``call()``, or SearchError (``what`` did not answer, and the ``hint``) if it has not
    returned after ``seconds``.

    Dask bounds its connection attempts, but not every wait after them: the handshake of a
    listener that accepts and never answers (no Dask scheduler at all) or a call to a
    scheduler that stopped answering would wait forever. The call runs in a daemon thread,
    left behind if it never returns."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="chainrule-search-wait", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise SearchError(f"{what} did not answer within {seconds:g} s{hint}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def dask_client(
    jobs: int | None = None,
    scheduler: str | None = None,
    *,
    tls: TLSFiles | None = None,
    logs: bool = False,
) -> Iterator[Any]:
    """A Dask ``distributed.Client``: of ``jobs`` single-threaded worker processes on this
    machine, or of the cluster whose scheduler listens at ``scheduler`` (``tcp://HOST:PORT``,
    or ``tls://HOST:PORT`` with ``tls``, the user's certificates). Closed on exit.

    The local cluster listens on 127.0.0.1 only, and speaks TLS with a key and certificate
    made for it alone, in memory (``Security.temporary()``): a process that does not hold
    them (another user's) cannot connect to its scheduler, workers or nannies, so cannot run
    code as the workers' user. Loopback alone is no boundary on a shared machine. A
    scheduler of your own that speaks plain ``tcp://`` runs code for anyone who can reach
    its port.

    The local workers are started with Ctrl-C ignored: the terminal sends it to every
    process of the command, and it is the search's to handle (it keeps the finished
    trials and closes the cluster), not each worker's to print a traceback for. They run
    without a dashboard (their HTTP servers answer health checks only), without Dask's
    statistical profiler, which would sample each trial's stack every 10 ms for no one to
    read, and without the ``MALLOC_TRIM_THRESHOLD_=65536`` that Dask's nanny gives its
    workers: it stops glibc from adapting its mmap threshold, so each of a step's arrays
    of more than 128 KB is mapped and unmapped anew, page faults and all.

    Every wait on a ``scheduler`` is bounded by :func:`answer_seconds` (SearchError).
    Dask's own log messages (a lost scheduler logs a traceback, say) are silenced in this
    process unless ``logs``: what goes wrong reaches the caller as an exception.
    """
    if (jobs is None) == (scheduler is None):
        raise ArgumentError("give exactly one of jobs and scheduler")
    import distributed  # noqa: F401  (its loggers must exist before they are silenced)

    with contextlib.ExitStack() as stack:
        if not logs:
            stack.enter_context(_dask_logs_silenced())
        if scheduler is not None:
            client = _scheduler_client(scheduler_address(scheduler), tls)
        else:
            if tls is not None:
                raise ArgumentError(
                    "TLS certificates are for a scheduler; a local cluster makes its own"
                )
            client = _local_client(jobs, stack)
        yield stack.enter_context(client)


def _scheduler_client(scheduler: str, tls: TLSFiles | None) -> Any:
    from distributed import Client

    security = _scheduler_security(scheduler, tls)
    seconds = answer_seconds()
    try:
        return _within(
            seconds,
            f"the Dask scheduler at {scheduler}",
            lambda: Client(scheduler, timeout=seconds, security=security, set_as_default=False),
            " (is it a Dask scheduler? distributed.comm.timeouts.connect sets the wait)",
        )
    except OSError as error:  # refused, timed out, a TLS handshake that failed
        raise SearchError(
            f"could not connect to the Dask scheduler at {scheduler}: {error}"
        ) from None


def _local_client(jobs: int, stack: contextlib.ExitStack) -> Any:
    import logging

    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    if importlib.util.find_spec("cryptography") is None:
        raise SearchError(
            "a local cluster speaks TLS, whose certificate needs the cryptography package: "
            "pip install 'chainrule[search]'"
        )
    settings = {
        "distributed.worker.profile.enabled": False,
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,  # unset
        "distributed.scheduler.http.routes": ["distributed.http.health"],
        "distributed.worker.http.routes": ["distributed.http.health"],
    }
    with _sigint_ignored(), dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=Security.temporary(),
            dashboard_address=None,
            # The scheduler serves HTTP (health checks) even without a dashboard, by
            # default on port 8787, which another cluster may hold: any free port, and on
            # the loopback interface only, as everything here.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        )
    stack.enter_context(cluster)
    return Client(cluster, set_as_default=False)  # with the cluster's certificate


@contextlib.contextmanager
def _dask_logs_silenced() -> Iterator[None]:
    """Dask's loggers in this process (``distributed`` and those below it, some of which
    Dask gives levels of their own) show nothing while the block runs."""
    import logging

    names = ["distributed"] + [
        n for n in logging.Logger.manager.loggerDict if n.startswith("distributed.")
    ]
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block starts processes (they inherit it), then restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _chainrule_version() -> str:
    import chainrule

    return chainrule.__version__


def check_workers(client: Any) -> int:
    """The number of threads the cluster's workers have in all (trials run side by side);
    SearchError if there is no worker, one cannot import this chainrule version, or the
    scheduler does not answer within :func:`answer_seconds`."""
    import chainrule

    seconds = answer_seconds()
    try:
        versions = _within(
            seconds,
            "the cluster's workers",
            lambda: client.run(_chainrule_version, on_error="return"),
        )
    except SearchError:
        raise
    except Exception as error:  # the workers' errors come back as values; this is the call's
        raise SearchError(f"could not reach the cluster's workers: {error}") from None
    if not versions:
        raise SearchError("the cluster has no workers: start some with 'dask worker ADDRESS'")
    for worker, version in sorted(versions.items()):
        if version != chainrule.__version__:
            found = version if isinstance(version, str) else f"no chainrule ({_short(version)})"
            raise SearchError(
                f"worker {worker} has {found}, this search chainrule {chainrule.__version__}: "
                "install the same chainrule on every worker"
            )
    info = _within(seconds, "the Dask scheduler", client.scheduler_info)
    return sum(w["nthreads"] for w in info["workers"].values())


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
