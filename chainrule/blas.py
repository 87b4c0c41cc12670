"""Matrix products whose numbers do not depend on the thread count, and the thread count
of the training step, chosen by timing.

The contract, kept by every training step that multiplies through :func:`matmul`:

- ``matmul(a, b, out)`` cuts a product into blocks along an output dimension (rows of
  ``a`` or columns of ``b``, never the sum over the shared one), at places fixed by the
  shapes alone; each block is one BLAS call. Small products are one block.
- Inside a step (from :meth:`ThreadTuner.start_step` to :meth:`ThreadTuner.end_step`,
  or all through :meth:`ThreadTuner.hold`) BLAS runs on one thread and a small pool of
  threads shares out the blocks. Which thread computes a block never changes its numbers,
  so a step gives the same numbers, bit for bit, on one worker or many, whatever the load.
- Outside a step (the book's layers calling ``np.dot``, ``predict`` called by the user)
  products run on the calling thread with BLAS's own thread count, which stays fixed for
  the process: those numbers repeat from run to run too, but may differ in their last
  bits from the same products inside a step.

Why not BLAS's own threads: OpenBLAS computes a product differently on one thread and on
two (its kernels for small products run on one), so a count chosen by timing made two
runs of one seed drift apart. Why timing at all: on a machine of few cores a busy
neighbour (a second training run, a notebook, a compiler) makes threads that wait for
each other crawl, while alone two threads are faster for a large network and slower for
a small one. So :class:`ThreadTuner` measures: the step starts with one worker, now and
then tries the most (BLAS's own thread count when the tuner was made), and keeps
whichever was faster, preferring one unless more are clearly better. BLAS's thread count
is set through threadpoolctl; without it, or with a BLAS it does not know, the step runs
its blocks on one worker with the library's own setting.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "ThreadTuner",
    "blas_controllers",
    "block_bounds",
    "check_threads",
    "matmul",
    "share",
    "worker_count",
    "workers",
]

# Products of fewer multiply-adds than twice this are one block: sharing them out costs
# more than it saves. Blocks hold at least this many and are at least _MIN_SIDE rows or
# columns wide (narrower blocks make one thread's BLAS slower), cut at multiples of
# _ALIGN; there are at most _MOST_BLOCKS of them, a power of two, so that two or four
# workers get equal shares.
_BLOCK_MACS = 1 << 21
_MIN_SIDE = 48
_ALIGN = 16
_MOST_BLOCKS = 4
_SPLIT_DTYPES = frozenset("fd")  # float32 and float64: the types the steps compute in

_PROBE_STEPS = 5  # steps timed with the other worker count, after one warm-up step
_SAMPLES = 15  # recent step times of the current count, for its median
# The intervals count the time spent in steps, not the time on the clock: a loop that
# stops and starts again (a benchmark's rounds, a notebook's cells, the book's loop with
# its own work between calls) goes on where it stopped instead of trying again at once.
_FIRST_PROBE_S = 0.05  # the first trial of more workers comes after this much training
_MOST_PROBE_INTERVAL_S = 30.0  # trials of more workers repeat at least this often
# While on more workers, one is tried after this much training; after each trial that
# changes nothing, twice as long, up to _MOST_FEWER_INTERVAL_S
_FEWER_PROBE_INTERVAL_S = 2.0
_MOST_FEWER_INTERVAL_S = 16.0
_CLEARLY_FASTER = 0.95  # more workers must take at most this share of one's time
_HOPELESS = 2.0  # a step this many times slower than usual: a trial ends, or one starts
# One worker has no thread to wake: its first step, this many times slower than usual,
# ends its trial. (Where one worker is far slower, as for a large network, a whole trial
# every 2 s of training cost fit much of its speed: docs/performance.md.)
_SLOWER = 1.25

_controllers: list[Any] | None = None
# .workers: how many threads share a product, in this thread; .pool: its own helpers
_local = threading.local()


# -- the products ---------------------------------------------------------------------------


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (into ``out`` when given), as ``np.matmul``, in blocks fixed by the shapes
    (see the module): for 2-d ``a`` (M, K) and ``b`` (K, N), or 1-d ``a`` (K,). Other
    products (stacks, integers, mixed types, an ``out`` that overlaps) are one block."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if type(b) is not np.ndarray:
        b = np.asarray(b)
    if b.ndim != 2 or a.ndim not in (1, 2) or a.size * b.shape[1] < 2 * _BLOCK_MACS:
        return np.matmul(a, b, out=out)
    if a.dtype != b.dtype or a.dtype.char not in _SPLIT_DTYPES or a.shape[-1] != len(b):
        return np.matmul(a, b, out=out)
    shape = (*a.shape[:-1], b.shape[1])
    if out is None:
        out = np.empty(shape, a.dtype)
    elif out.shape != shape or out.dtype != a.dtype:
        return np.matmul(a, b, out=out)  # NumPy's own checks and casts
    elif np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return np.matmul(a, b, out=out)
    rows = a.shape[0] if a.ndim == 2 else 1
    blocks = _blocks(a, b, out, rows, a.shape[-1], b.shape[1])
    if len(blocks) == 1:
        return np.matmul(a, b, out=out)
    _pool.run(blocks, worker_count())
    return out


def block_bounds(rows: int, inner: int, cols: int) -> tuple[int, list[int]]:
    """Where :func:`matmul` cuts an (rows × inner) · (inner × cols) product: the axis of
    the output it cuts (0: rows, 1: columns) and the cuts, from 0 to that dimension's size.
    A function of the three sizes alone."""
    axis = 0 if rows >= cols else 1
    size = (rows, cols)[axis]
    count = min(_MOST_BLOCKS, rows * inner * cols // _BLOCK_MACS, size // _MIN_SIDE)
    count = 1 << (count.bit_length() - 1) if count > 1 else 1
    return axis, [round(i * size / count / _ALIGN) * _ALIGN for i in range(count)] + [size]


def _blocks(a: np.ndarray, b: np.ndarray, out: np.ndarray, rows: int, inner: int, cols: int):
    """The product's blocks, as calls that each compute one block into ``out``."""
    axis, cuts = block_bounds(rows, inner, cols)
    if axis == 0:
        return [_product(a[i:j], b, out[i:j]) for i, j in itertools.pairwise(cuts)]
    return [_product(a, b[:, i:j], out[..., i:j]) for i, j in itertools.pairwise(cuts)]


def share(calls: list[Callable[[], Any]]) -> None:
    """Run ``calls``, each writing a part of an output of its own, on the step's workers
    (as :func:`matmul`'s blocks): for work whose numbers cannot depend on which thread
    does it, such as copies."""
    _pool.run(calls, worker_count())


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Callable[[], Any]:
    return lambda: np.matmul(a, b, out=out)


def worker_count() -> int:
    """How many threads share :func:`matmul`'s blocks now, on this thread (1 outside a
    step)."""
    return getattr(_local, "workers", 1)


@contextmanager
def workers(count: int) -> Iterator[None]:
    """Within the block, :func:`matmul` shares its blocks among ``count`` threads (the
    calling one included). BLAS's own thread count is left alone: a step sets it to one."""
    check_threads(count)
    before = worker_count()
    _local.workers = count
    try:
        yield
    finally:
        _local.workers = before


def check_threads(count: Any) -> None:
    """Raise ArgumentError unless ``count`` is a positive integer: a thread count."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        from chainrule.errors import ArgumentError

        raise ArgumentError(f"threads must be a positive integer, got {count!r}")


class _Job:
    """One product's blocks, claimed one at a time by whichever thread is free."""

    def __init__(self, blocks: list[Callable[[], Any]]) -> None:
        self.blocks = blocks
        self.claims = itertools.count()  # next() is atomic in CPython
        self.helping = 0  # helper threads inside help()
        self.done = threading.Condition()
        self.error: BaseException | None = None

    def next_block(self) -> Callable[[], Any] | None:
        index = next(self.claims)
        return self.blocks[index] if index < len(self.blocks) else None

    def help(self) -> None:
        """A helper thread's share: blocks until none is left (or one raised)."""
        with self.done:
            self.helping += 1  # before claiming, so that the caller waits for the block
        try:
            while (block := self.next_block()) is not None:
                block()
        except BaseException as error:  # raised again in the calling thread
            self.error = error
        finally:
            with self.done:
                self.helping -= 1
                self.done.notify()

    def work_and_wait(self) -> None:
        """The calling thread's share, then the wait for the helpers' blocks: they write
        into the caller's arrays, so none may still run when it goes on, even after an
        exception (a KeyboardInterrupt, say)."""
        try:
            while (block := self.next_block()) is not None:
                block()
        finally:
            while self.next_block() is not None:
                pass  # stopped early: leave the helpers nothing more to start
            with self.done:
                while self.helping:
                    self.done.wait()
        if self.error is not None:
            raise self.error


class _Pool:
    """Helper threads, started when first needed, that join the caller on a product's
    blocks. Each waits on a lock of its own, which the caller releases to wake it."""

    def __init__(self) -> None:
        self._signals: list[threading.Lock] = []
        self._job: _Job | None = None
        self._busy = threading.Lock()  # one product at a time; another uses its own pool

    def run(self, blocks: list[Callable[[], Any]], count: int) -> None:
        count = min(count, len(blocks))
        busy = count > 1 and not self._busy.acquire(blocking=False)
        if busy and (own := _own_pool()) is not self:
            # Inside a block of another product (a part of a batch with workers of its
            # own): this thread's own helpers share it
            return own.run(blocks, count)
        if count <= 1 or busy:
            for block in blocks:
                block()
            return
        try:
            job = self._job = _Job(blocks)
            while len(self._signals) < count - 1:
                self._start_helper()
            for signal in self._signals[: count - 1]:
                if signal.locked():  # else it is awake already, or about to be
                    signal.release()
            before, _local.workers = worker_count(), 1  # a block runs as on a helper
            try:
                job.work_and_wait()
            finally:
                _local.workers = before
        finally:
            self._job = None
            self._busy.release()

    def _start_helper(self) -> None:
        signal = threading.Lock()
        signal.acquire()
        self._signals.append(signal)
        threading.Thread(target=self._helper, args=(signal,), daemon=True).start()

    def _helper(self, signal: threading.Lock) -> None:
        while True:
            signal.acquire()
            job = self._job
            if job is not None:
                job.help()


_pool = _Pool()


def _own_pool() -> _Pool:
    """The calling thread's own pool, for products inside a block of :data:`_pool`'s."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = _Pool()
    return pool


def _new_pool_in_child() -> None:
    global _pool
    _pool = _Pool()  # a forked child has none of its parent's threads
    _local.__dict__.pop("pool", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pool_in_child)


# -- the thread count -----------------------------------------------------------------------


def blas_controllers() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process, or []."""
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controllers = []
        else:
            _controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return _controllers


class ThreadTuner:
    """Chooses how many threads share the products of a step that runs again and again.

    Call :meth:`start_step` before each step and :meth:`end_step` with its time after it
    (also when it raised): in between, BLAS runs on one thread and :func:`matmul` shares
    its blocks among the chosen number of workers. Around a loop of steps, ``with
    tuner.hold():`` keeps that set from step to step (and between them) instead of
    restoring the library's own count after each. ``fixed`` pins the count (1, 2, ...);
    the default tunes between 1 and the number of threads the BLAS library was set to
    when the tuner was made. The count changes the speed only, never the numbers.
    """

    def __init__(self, fixed: int | None = None) -> None:
        self.libraries = blas_controllers()
        most = max((lib.num_threads for lib in self.libraries), default=1)
        if fixed is not None:
            check_threads(fixed)
        self.fixed = fixed
        self.candidates = (fixed,) if fixed else tuple(sorted({1, most}))
        self.current = self.candidates[0]
        self.on_trial: int | None = None  # the count being tried instead, if any
        self._times: deque[float] = deque(maxlen=_SAMPLES)  # recent steps on ``current``
        self._trial_times: list[float] = []
        self._slow_step: float | None = None  # the last step, if it was far slower than usual
        self._interval = _FIRST_PROBE_S
        self._fewer_interval = _FEWER_PROBE_INTERVAL_S
        self._trained = 0.0  # seconds spent in the steps so far: the tuner's clock
        self._next_trial = self._interval
        self._held = False
        self._saved: list[int] = []  # the libraries' counts before a step, to restore
        self._saved_workers = 1

    # -- setting the count ---------------------------------------------------------------

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep BLAS on one thread and the chosen worker count set across the steps of the
        block (and between them); restore both after it."""
        saved = [lib.num_threads for lib in self.libraries]
        before = worker_count()
        self.one_blas_thread()
        self._held = True
        try:
            yield
        finally:
            self._held = False
            self._set(saved)
            _local.workers = before

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """Run the block's products on the calling thread alone, then go back to the
        step's count: for products that more threads slow down. (The numbers are the same
        either way.)"""
        with workers(1):
            yield

    def start_step(self) -> int:
        """Set the worker count (and BLAS's one thread) for the step about to run, and
        return the count."""
        count = self.on_trial or self.current
        if not self._held:
            self._saved = [lib.num_threads for lib in self.libraries]
            self._saved_workers = worker_count()
            self.one_blas_thread()
        _local.workers = count
        return count

    def end_step(self, seconds: float) -> None:
        """Restore the libraries' counts (unless held), and take the step's time."""
        if not self._held:
            self._set(self._saved)
            self._saved = []
            _local.workers = self._saved_workers
        self.record(seconds)

    def one_blas_thread(self) -> None:
        """Set BLAS to one thread, and leave it so (a step restores it after)."""
        self._set([1] * len(self.libraries))

    def _set(self, counts: list[int]) -> None:
        for lib, count in zip(self.libraries, counts):
            if lib.num_threads != count:
                lib.set_num_threads(count)

    # -- choosing it -----------------------------------------------------------------------

    def record(self, seconds: float) -> None:
        """Take the time of the step just run, and decide what the next one uses."""
        if len(self.candidates) == 1:
            return
        self._trained += seconds
        if self.on_trial is None:
            slow = (
                self.current > 1 and len(self._times) >= 3 and seconds > _HOPELESS * self._usual()
            )
            # Two slow steps in a row: a neighbour started working, most likely, so fewer
            # workers are tried now, against these steps. One alone is a hiccup (a page
            # fault, the collector), and against it any trial would win.
            slowed = slow and self._slow_step is not None
            if slowed:
                self._times.clear()
                self._times.append(self._slow_step)
            self._slow_step = seconds if slow and not slowed else None
            self._times.append(seconds)
            if slowed or (len(self._times) >= 3 and self._trained >= self._next_trial):
                self.on_trial = next(n for n in self.candidates if n != self.current)
                self._trial_times = []
            return
        self._trial_times.append(seconds)
        usual = self._usual()
        # The warm-up step may wait for a sleeping thread to wake: only the next one tells.
        fewer = self.on_trial < self.current
        if fewer and len(self._trial_times) == 1 and seconds > _SLOWER * usual:
            self._end_trial(switch=False)
        elif len(self._trial_times) == 2 and seconds > _HOPELESS * usual:
            self._end_trial(switch=False)  # this slow after the warm-up: the cores are busy
        elif len(self._trial_times) > _PROBE_STEPS:
            tried = statistics.median(self._trial_times[1:])  # the warm-up not counted
            if self.on_trial > self.current:
                better = tried <= _CLEARLY_FASTER * usual
            else:
                # Back to fewer when they are as fast. Not when within the margin: the
                # neighbour that makes more threads slow shows as a far larger gap, and
                # a margin here let a lucky trial switch away from a faster count.
                better = tried <= usual
            self._end_trial(switch=better)

    def _usual(self) -> float:
        """The median of the recent steps on the current count."""
        return sorted(self._times)[len(self._times) // 2]

    def _end_trial(self, *, switch: bool) -> None:
        if switch:
            self.current = self.on_trial
            self._times.clear()
            self._interval = _FIRST_PROBE_S
            self._fewer_interval = _FEWER_PROBE_INTERVAL_S
        elif self.on_trial > self.current:
            # Each trial of more workers that changes nothing waits twice as long before
            # the next: such a trial can be slow when the cores are busy.
            self._interval = min(2 * self._interval, _MOST_PROBE_INTERVAL_S)
        else:
            # Likewise for one worker, sooner: a neighbour that starts working can slow
            # every step on more (two slow steps in a row start a trial at once)
            self._fewer_interval = min(2 * self._fewer_interval, _MOST_FEWER_INTERVAL_S)
        self.on_trial = None
        wait = self._fewer_interval if self.current > 1 else self._interval
        self._next_trial = self._trained + wait
