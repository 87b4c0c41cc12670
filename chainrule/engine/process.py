"""A forked process that computes one part of a split batch (:mod:`chainrule.engine.step`).

Why a process: two parts of a batch on two threads of one process take turns at Python's
lock (the GIL) around each of their NumPy calls, hundreds a step, and each wait for the
other thread's turn costs more than the call. Two processes share no such lock.

A :class:`Child` is a fork of the step's process, so it holds the same objects (the plan's
kernels among them) at the same addresses. The two share named arrays in memory mapped
before the fork; the parent writes a part's inputs there, sends a message, runs its own
part meanwhile, and waits for the reply, after which the child's outputs are there too.
Linux only: macOS's system frameworks are not safe to use after a fork, and Windows has
none. ``CHAINRULE_FORK=0`` in the environment turns it off.
"""

from __future__ import annotations

import math
import mmap
import os
import select
import signal
import socket
import sys
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Child", "forks"]

_SERVED, _FAILED = b"+", b"-"
_ALIGN = 64  # each array starts on a cache line of its own
_PARENT_CHECK_S = 1.0  # how often a waiting child checks that its parent is still there


def forks() -> bool:
    """Whether parts of a batch may run in forked processes here."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and os.environ.get("CHAINRULE_FORK", "1") != "0"
    )


class Child:
    """A forked process that runs ``serve(arrays, message)`` for each message the parent
    sends, one at a time. ``arrays`` are the named arrays of ``specs`` (name: shape and
    dtype), in memory the two processes share. The child ends when :meth:`close` is
    called, when this object is collected, when the interpreter exits, or when the parent
    dies. Raises OSError when the process cannot be made."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], Any]], serve: Callable) -> None:
        sizes = [-(-math.prod(shape) * np.dtype(dtype).itemsize // _ALIGN) * _ALIGN
                 for shape, dtype in specs.values()]  # fmt: skip
        memory = mmap.mmap(-1, max(_ALIGN, sum(sizes)))  # anonymous and shared: a fork sees it
        self.arrays: dict[str, np.ndarray] = {}
        offset = 0
        for (name, (shape, dtype)), size in zip(specs.items(), sizes):
            count = math.prod(shape)
            array = np.frombuffer(memory, dtype, count, offset).reshape(shape)
            self.arrays[name], offset = array, offset + size
        parent = os.getpid()
        # Packets, not a stream: each message arrives whole
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of any fork of a process with threads: the child here
                # uses none of the parent's threads or the locks they may hold.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            self._socket.close()
            theirs.close()
            raise
        if pid == 0:
            self._socket.close()
            _serve_forever(theirs, parent, serve, self.arrays)
        theirs.close()
        self.pid, self._parent = pid, parent
        self._end = weakref.finalize(self, _end, pid, parent, self._socket)

    @property
    def ours(self) -> bool:
        """Whether this process made the child: a fork of it (a multiprocessing worker,
        say) holds the same object, which must not be used there."""
        return os.getpid() == self._parent

    def request(self, message: bytes) -> bool:
        """Send the child a message; False when the child is gone (it is then ended)."""
        try:
            # MSG_NOSIGNAL: a child that died is an error here, not SIGPIPE for the parent
            self._socket.sendall(message, socket.MSG_NOSIGNAL)
            return True
        except OSError:
            self.close()
            return False

    def reply(self, timeout: float) -> bool:
        """Wait for the reply to the last request: True when the child served it; False
        when it failed, died or took more than ``timeout`` seconds (it is then ended)."""
        try:
            if _readable(self._socket.fileno(), timeout) and self._socket.recv(1) == _SERVED:
                return True
        except OSError:
            pass  # it died as the reply was awaited
        self.close()
        return False

    @property
    def alive(self) -> bool:
        return self._end.alive

    def close(self) -> None:
        """End the child (it keeps nothing worth waiting for) and reap it."""
        self._end()


def _end(pid: int, parent: int, connection: socket.socket) -> None:
    if os.getpid() != parent:
        return  # a fork of the parent (a multiprocessing worker, say): not its child
    connection.close()
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _serve_forever(
    connection: socket.socket, parent: int, serve: Callable, arrays: dict[str, np.ndarray]
) -> None:
    """The child's whole life: serve each request until the parent is gone, then exit
    without running the parent's exit handlers or flushing its files."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        # The parent's own handler (a CLI's, that finishes the step and saves) is not
        # the child's: SIGTERM ends it, and the parent then computes its half
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while (message := _next_request(connection, parent)) is not None:
            try:
                serve(arrays, message)
            except Exception:
                connection.sendall(_FAILED)  # the parent computes the part itself
            else:
                connection.sendall(_SERVED)
    finally:
        os._exit(0)


def _next_request(connection: socket.socket, parent: int) -> bytes | None:
    """The next message, or None once the parent has closed its end or died (a fork of
    the parent may hold that end open after it)."""
    while True:
        if _readable(connection.fileno(), _PARENT_CHECK_S):
            return connection.recv(512) or None
        if os.getppid() != parent:
            return None


def _readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` can be read (or is at its end) within ``timeout`` seconds."""
    poll = select.poll()  # select() cannot watch descriptors past 1023
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(timeout * 1000))
