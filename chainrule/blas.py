"""How many threads BLAS may use for the training step, chosen by timing it.

On a machine of few cores, OpenBLAS's threads wait for each other by spinning: when
another busy process holds one of the cores (a second training run, a notebook, a
compiler), a two-threaded matrix product can take ten to thirty times as long as a
one-threaded one. Alone, the same product may be a third faster with two threads for a
large network, and slower for a small one. No fixed number is right, so
:class:`ThreadTuner` measures: the step starts with one thread, now and then tries the
most the library allows, and keeps whichever was faster, preferring one thread unless
more are clearly better (fewer threads also leave the neighbours' cores alone).

The thread count is set around each step and restored after it (or once around a
training loop), through threadpoolctl
(a small, well-kept library for exactly this); without threadpoolctl, or with a BLAS it
does not know, the step runs with the library's own setting.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ThreadTuner", "blas_controllers", "matmul"]

_PROBE_STEPS = 5  # steps timed with the other thread count, after one warm-up step
_SAMPLES = 15  # recent step times of the current count, for its median
# The intervals count the time spent in steps, not the time on the clock: a loop that
# stops and starts again (a benchmark's rounds, a notebook's cells, the book's loop with
# its own work between calls) goes on where it stopped instead of trying again at once.
_FIRST_PROBE_S = 0.05  # the first trial of more threads comes after this much training
_MOST_PROBE_INTERVAL_S = 30.0  # trials of more threads repeat at least this often
_FEWER_PROBE_INTERVAL_S = 2.0  # while on more threads, one thread is tried this often
_CLEARLY_FASTER = 0.95  # more threads must take at most this share of one thread's time
_HOPELESS = 2.0  # a step this many times slower than usual: a trial ends, or one starts

_controllers: list[Any] | None = None


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (into ``out`` when given) for the training step: every product of the
    engine goes through here, so that how products are split across threads is decided
    in one place."""
    import numpy as np

    return np.matmul(a, b, out=out)


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
    """Chooses the BLAS thread count of a step that runs again and again.

    Call :meth:`start_step` before each step and :meth:`end_step` with its time after it
    (also when it raised). Around a loop of steps, ``with tuner.hold():`` keeps the count
    set from step to step instead of restoring the library's own after each. ``fixed``
    pins the count (1, 2, ...); the default tunes between 1 and the number of threads the
    BLAS library was set to when the tuner was made.
    """

    def __init__(self, fixed: int | None = None) -> None:
        self.libraries = blas_controllers()
        most = max((lib.num_threads for lib in self.libraries), default=1)
        if fixed is not None and fixed < 1:
            raise ValueError(f"BLAS threads must be a positive integer, got {fixed!r}")
        self.fixed = fixed
        self.candidates = (fixed,) if fixed else tuple(sorted({1, most}))
        self.current = self.candidates[0]
        self.on_trial: int | None = None  # the count being tried instead, if any
        self._times: deque[float] = deque(maxlen=_SAMPLES)  # recent steps on ``current``
        self._trial_times: list[float] = []
        self._slow_step: float | None = None  # the last step, if it was far slower than usual
        self._interval = _FIRST_PROBE_S
        self._trained = 0.0  # seconds spent in the steps so far: the tuner's clock
        self._next_trial = self._interval
        self._held = False
        self._applied: int | None = None  # the count set while held
        self._saved: list[int] = []  # the libraries' counts before a step, to restore

    # -- setting the count ---------------------------------------------------------------

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the chosen count set across the steps of the block; restore after it."""
        saved = [lib.num_threads for lib in self.libraries]
        self._held, self._applied = True, None
        try:
            yield
        finally:
            self._held = False
            self._set(saved)

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """Run the block on one BLAS thread, then go back to the step's count: for a
        product that more threads slow down, such as a long, thin one whose output is too
        small to share (the convolution's dW, 26×30 summed over 57,600 rows: a third
        faster on one thread than on two, on the 2-core Intel Xeon)."""
        busy = [lib for lib in self.libraries if lib.num_threads > 1]
        counts = [lib.num_threads for lib in busy]
        for lib in busy:
            lib.set_num_threads(1)
        try:
            yield
        finally:
            for lib, count in zip(busy, counts):
                lib.set_num_threads(count)

    def start_step(self) -> int:
        """Set the thread count for the step about to run, and return it."""
        count = self.on_trial or self.current
        if not self.libraries or (self.fixed is None and len(self.candidates) == 1):
            return count  # nothing to choose: the library keeps its own count
        if self._held:
            if count != self._applied:
                self._set([count] * len(self.libraries))
                self._applied = count
        else:
            self._saved = [lib.num_threads for lib in self.libraries]
            self._set([count] * len(self.libraries))
        return count

    def end_step(self, seconds: float) -> None:
        """Restore the libraries' counts (unless held), and take the step's time."""
        if not self._held and self._saved:
            self._set(self._saved)
            self._saved = []
        self.record(seconds)

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
            # threads are tried now, against these steps. One alone is a hiccup (a page
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
        if len(self._trial_times) == 2 and seconds > _HOPELESS * usual:
            self._end_trial(switch=False)  # this slow after the warm-up: the cores are busy
        elif len(self._trial_times) > _PROBE_STEPS:
            tried = statistics.median(self._trial_times[1:])  # the warm-up not counted
            if self.on_trial > self.current:
                better = tried <= _CLEARLY_FASTER * usual
            else:
                # Back to fewer when they are as fast. Not when within the margin: the
                # neighbour that makes more threads slow shows as a far larger gap, and
                # a margin here let a lucky trial leave a 10% faster count for 30 s.
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
        else:
            # Each trial of more threads that changes nothing waits twice as long before
            # the next: such a trial can be slow when the cores are busy.
            self._interval = min(2 * self._interval, _MOST_PROBE_INTERVAL_S)
        self.on_trial = None
        # On more threads, a neighbour that starts working can slow every step many times
        # over, so one thread (never a slow trial) is tried again soon.
        wait = _FEWER_PROBE_INTERVAL_S if self.current > 1 else self._interval
        self._next_trial = self._trained + wait
