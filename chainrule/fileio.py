"""Atomic file writes: a file either keeps its old contents or gets all of its new ones.

Everything chainrule saves (checkpoints, downloads, IDX files, plots, metrics) goes
through :func:`atomic_write`: the data goes to a temporary file in the target's folder,
is flushed and fsynced, and only then renamed over the target, so a crash, a full disk or
Ctrl-C at any moment never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_directory"]


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


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    # O_EXCL with a random name rather than tempfile.mkstemp: mkstemp creates the file
    # 0600, which the renamed file would keep; 0o666 lets the user's umask decide.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **open_args: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path``.

    If the block raises (or is interrupted), the temporary file is removed and ``path``
    is left exactly as it was. ``mode`` is ``"wb"`` or ``"w"`` (then pass ``encoding``).
    An OSError from creating or renaming the temporary file names ``path``, the file the
    caller asked for, not the temporary one.
    """
    path = Path(path)
    folder = path.parent
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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(folder)
