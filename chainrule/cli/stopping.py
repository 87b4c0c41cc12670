"""Ctrl-C or SIGTERM while ``chainrule train`` runs: training stops at the end of the
step in progress, so that the checkpoint it then saves is consistent."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from chainrule.cli.args import PROG
from chainrule.errors import TrainingError


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, raised at the end of a step so that a checkpoint is consistent."""

    def __init__(self, step: int, signum: int) -> None:
        super().__init__(step, signum)
        self.step, self.signum = step, signum


# What a second signal does: Ctrl-C interrupts at once, SIGTERM ends the process.
_SECOND_SIGNAL = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@contextlib.contextmanager
def stop_at_step_boundary_on_signal():
    """While training, a first Ctrl-C or SIGTERM only records the signal (the list is
    non-empty then): the step in progress finishes, then training stops and saves. A
    second one acts at once, as usual (SIGTERM is what a scheduler or ``kill`` sends)."""
    received: list[int] = []

    def on_signal(signum, frame) -> None:
        received.append(signum)
        for number, action in _SECOND_SIGNAL.items():
            signal.signal(number, action)

    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.signal(number, on_signal) for number in _SECOND_SIGNAL}
    try:
        yield received
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def save_when_stopped(stop: Interrupted, target: str | None, save, history) -> int:
    """Save an interrupted run (unless its weights are not finite), say so in one line, and
    return the exit status a shell gives a process ended by that signal (130 for Ctrl-C)."""
    what = "interrupted" if stop.signum == signal.SIGINT else "terminated"
    if not target:
        line = f"{what} at step {stop.step} (nothing saved: no --save)"
    else:
        try:
            save(stop.step, history)
        except TrainingError as error:
            line = f"{what} at step {stop.step}; not saved: {error}"
        else:
            line = (
                f"{what} at step {stop.step}; saved {target} "
                f"(continue with: {PROG} train --resume {target})"
            )
    print(f"{PROG}: {line}", file=sys.stderr)
    return 128 + stop.signum
