"""The results file of a search: one JSON line per finished trial, read, appended, locked.

:func:`read_results` checks every record (:mod:`chainrule.search.records`),
:func:`append_result` adds one durably, :func:`results_lock` keeps the file to one search
at a time, and :func:`rank` orders the records, best first. A search is resumable because
the trials already in its file are not run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chainrule.errors import DataError, SearchError
from chainrule.fileio import fsync_directory
from chainrule.search.records import _record_problem, _refuse_another_search
from chainrule.search.space import Search

__all__ = ["MAX_RECORD_BYTES", "append_result", "rank", "read_results", "results_lock"]

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
