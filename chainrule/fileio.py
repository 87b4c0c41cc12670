"""Atomic file writes: a file either keeps its old contents or gets all of its new ones.

Everything chainrule saves (checkpoints, downloads, IDX files, plots, metrics) goes
through :func:`atomic_write`: the data goes to a temporary file in the target's folder,
is flushed and fsynced, and only then renamed over the target, so a crash, a full disk or
Ctrl-C at any moment never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_directory", "remove_stale_temporaries"]


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself was synced
    finally:
        os.close(fd)


def _temp_pattern(name: str) -> re.Pattern[str]:
    """The temporary files of target ``name``: ``.NAME.PID-HEX.tmp`` (``.NAME.HEX.tmp``
    before the writer's process id was part of the name)."""
    return re.compile(rf"\.{re.escape(name)}\.(?:(\d+)-)?[0-9a-f]{{12}}\.tmp")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to another user
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that a killed writer of ``path`` left behind.

    A file is stale when the process that named itself in it has ended, or when it
    carries no process id (an older chainrule's); a writer still running keeps its file.
    POSIX only: elsewhere ``os.kill`` would end the process it asks about.
    """
    if os.name != "posix":
        return
    pattern = _temp_pattern(path.name)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or (match.group(1) and _process_alive(int(match.group(1)))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    # O_EXCL with a random name rather than tempfile.mkstemp: mkstemp creates the file
    # 0600, which the renamed file would keep; 0o666 lets the user's umask decide.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")  # pragma: no cover


def _naming(path: Path, error: OSError) -> OSError:
    """The same error (class, errno, reason) about ``path`` instead of a temporary file."""
    if error.errno is None:  # no OS error code: a message of chainrule's own, kept as is
        return error
    return type(error)(error.errno, error.strerror, str(path))


def _names_no_file(error: BaseException) -> bool:
    """An OS error of writing or syncing (a full disk: ``[Errno 28]``) that names no file."""
    return isinstance(error, OSError) and error.errno is not None and error.filename is None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **open_args: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path``.

    If the block raises (or is interrupted), the temporary file is removed and ``path``
    is left exactly as it was. ``mode`` is ``"wb"`` or ``"w"`` (then pass ``encoding``).
    An OSError from creating, writing, syncing or renaming the temporary file names
    ``path``, the file the caller asked for, not the temporary one. Temporary files of
    ``path`` that a killed writer left are removed first.
    """
    path = Path(path)
    folder = path.parent
    remove_stale_temporaries(path)
    try:
        fd, tmp = _create_temp(folder, path.name)
    except OSError as error:
        raise _naming(path, error) from error
    try:
        with os.fdopen(fd, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise _naming(path, error) from error
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _names_no_file(error):
            raise _naming(path, error) from error
        raise
    fsync_directory(folder)
