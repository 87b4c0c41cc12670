"""The thread tuner: its decisions, on step times given by the test, and what it sets."""

import itertools
import time

import pytest

from chainrule import blas
from chainrule.errors import ArgumentError


class FakeLibrary:
    """Stands in for a threadpoolctl library controller."""

    def __init__(self, threads):
        self.num_threads = threads
        self.calls = []

    def set_num_threads(self, n):
        self.calls.append(n)
        self.num_threads = n


def tuner_with(monkeypatch, threads=2, fixed=None):
    library = FakeLibrary(threads)
    monkeypatch.setattr(blas, "blas_controllers", lambda: [library])
    return blas.ThreadTuner(fixed), library


def run_steps(tuner, seconds_by_count, steps):
    """Run ``steps`` steps whose time depends on the thread count they run with."""
    used = []
    for _ in range(steps):
        count = tuner.start_step()
        used.append(count)
        tuner.end_step(seconds_by_count[count])
    return used


def test_starts_with_one_thread_and_keeps_two_when_clearly_faster(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    used = run_steps(tuner, {1: 1.0, 2: 0.6}, 20)
    assert used[0] == 1
    assert tuner.current == 2 and used[-1] == 2


def test_keeps_one_thread_when_two_are_not_clearly_faster(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    used = run_steps(tuner, {1: 1.0, 2: 0.97}, 40)  # 3% faster is not enough
    assert 2 in used  # tried ...
    assert tuner.current == 1  # ... and left


def test_a_hopeless_trial_ends_after_two_steps(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    used = run_steps(tuner, {1: 1.0, 2: 30.0}, 12)  # spinning threads, busy cores
    assert 2 in used and tuner.current == 1
    assert (2, 2, 2) not in zip(used, used[1:], used[2:])  # a warm-up and one timed step


def test_a_slow_warm_up_alone_does_not_end_the_trial(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    run_steps(tuner, {1: 1.0}, 3)  # a trial is due
    assert tuner.start_step() == 2
    tuner.end_step(30.0)  # the warm-up: a thread woke up late
    used = run_steps(tuner, {1: 1.0, 2: 0.6}, 6)
    assert used[:5] == [2] * 5 and tuner.current == 2


def test_goes_back_to_one_thread_when_a_neighbour_slows_two(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    run_steps(tuner, {1: 0.01, 2: 0.006}, 40)
    assert tuner.current == 2
    # A busy neighbour arrives: two threads now crawl. The second slow step in a row
    # starts a trial of one thread, which wins after its warm-up and five timed steps.
    used = run_steps(tuner, {1: 0.01, 2: 0.2}, 9)
    assert used[:3] == [2, 2, 1] and tuner.current == 1


def test_one_slow_step_alone_keeps_two_threads(monkeypatch):
    # A hiccup (a page fault, the garbage collector) is one slow step: measured against
    # it, one thread would win a trial and leave two threads that are 40% faster.
    tuner, _ = tuner_with(monkeypatch)
    run_steps(tuner, {1: 0.01, 2: 0.006}, 40)
    assert tuner.current == 2
    for _ in range(5):
        tuner.start_step()
        tuner.end_step(0.05)  # the hiccup
        assert run_steps(tuner, {1: 0.01, 2: 0.006}, 10) == [2] * 10
    assert tuner.current == 2


def test_a_clearly_slower_trial_of_one_thread_ends_after_one_step_and_backs_off(monkeypatch):
    # DeepConvNet: one worker takes 1.9 times as long. Each trial costs one slow step,
    # and the trials come after 2, 4, 8 and 16 s of training, then every 16 s.
    tuner, _ = tuner_with(monkeypatch)
    seconds = {1: 0.2, 2: 0.1}
    used = run_steps(tuner, seconds, 1300)
    switched = used.index(2) + 6  # the trial of two: a warm-up and five timed steps
    assert tuner.current == 2 and used[switched : switched + 5] == [2] * 5
    trials = [i for i in range(switched, len(used)) if used[i] == 1]
    assert all(used[i + 1] == 2 for i in trials)  # one step each
    starts = [sum(seconds[c] for c in used[:i]) for i in [switched, *trials]]
    waits = [b - a for a, b in itertools.pairwise(starts)]
    waits[1:] = [wait - 0.2 for wait in waits[1:]]  # less each trial's own step
    assert waits[:6] == pytest.approx([2, 4, 8, 16, 16, 16], abs=0.15)


def test_a_trial_of_one_thread_a_little_slower_runs_its_course(monkeypatch):
    tuner, _ = tuner_with(monkeypatch)
    run_steps(tuner, {1: 0.11, 2: 0.1}, 40)  # two: clearly faster than one at first
    assert tuner.current == 2
    used = run_steps(tuner, {1: 0.105, 2: 0.1}, 100)
    assert (1, 1, 1, 1, 1, 1) in zip(*(used[i:] for i in range(6)))  # a whole trial
    assert tuner.current == 2


def test_trials_come_after_time_spent_training_not_time_on_the_clock(monkeypatch):
    # A loop that pauses between its steps (a benchmark's rounds, a notebook's cells) must
    # not be tried on one thread at every restart: only 2 s of training brings a trial.
    tuner, _ = tuner_with(monkeypatch)
    run_steps(tuner, {1: 0.02, 2: 0.01}, 40)
    assert tuner.current == 2
    now = [time.perf_counter()]

    def an_hour_later():
        now[0] += 3600.0
        return now[0]

    monkeypatch.setattr(time, "perf_counter", an_hour_later)
    assert run_steps(tuner, {1: 0.02, 2: 0.01}, 150) == [2] * 150  # 1.5 s of training
    assert 1 in run_steps(tuner, {1: 0.02, 2: 0.01}, 60)  # past 2 s: one thread is tried


def test_a_step_runs_blas_on_one_thread_and_restores_it_after(monkeypatch):
    tuner, library = tuner_with(monkeypatch, threads=4)
    assert tuner.candidates == (1, 4)
    assert tuner.start_step() == 1 and library.num_threads == 1
    tuner.end_step(1.0)
    assert library.num_threads == 4
    tuner, library = tuner_with(monkeypatch, threads=4, fixed=3)
    assert tuner.start_step() == 3  # three workers share the blocks ...
    assert library.num_threads == 1 and blas.worker_count() == 3  # ... on one BLAS thread
    tuner.end_step(1.0)
    assert library.num_threads == 4 and blas.worker_count() == 1


def test_held_settings_are_made_once_and_restored_after_the_loop(monkeypatch):
    tuner, library = tuner_with(monkeypatch, threads=4)
    with tuner.hold():
        run_steps(tuner, {1: 1.0, 4: 2.0}, 3)
        assert library.num_threads == 1 and library.calls == [1]  # once, not every step
    assert library.num_threads == 4
    tuner, library = tuner_with(monkeypatch, threads=4, fixed=2)
    with tuner.hold():
        run_steps(tuner, {2: 1.0}, 3)
        assert blas.worker_count() == 2  # between steps too: evaluation shares the blocks
    assert library.num_threads == 4 and blas.worker_count() == 1


def test_a_fixed_count_is_never_tuned(monkeypatch):
    tuner, _ = tuner_with(monkeypatch, fixed=2)
    used = run_steps(tuner, {2: 1.0}, 30)
    assert set(used) == {2}
    for wrong in (0, -1, 1.5, True, "2"):
        with pytest.raises(ArgumentError, match="positive integer"):
            blas.ThreadTuner(wrong)


def test_one_thread_libraries_have_nothing_to_tune(monkeypatch):
    tuner, library = tuner_with(monkeypatch, threads=1)
    assert run_steps(tuner, {1: 1.0}, 10) == [1] * 10
    assert library.calls == []


def test_one_thread_for_a_block_then_the_steps_count_again(monkeypatch):
    tuner, _ = tuner_with(monkeypatch, threads=4, fixed=4)
    with tuner.hold():
        tuner.start_step()
        with tuner.one_thread():
            assert blas.worker_count() == 1
        assert blas.worker_count() == 4
        with pytest.raises(ZeroDivisionError), tuner.one_thread():
            1 / 0  # noqa: B018
        assert blas.worker_count() == 4
        tuner.end_step(1.0)


def test_without_threadpoolctl_the_steps_run_on_one_worker(monkeypatch):
    monkeypatch.setattr(blas, "blas_controllers", lambda: [])
    tuner = blas.ThreadTuner()
    assert tuner.candidates == (1,)
    with tuner.hold():
        assert run_steps(tuner, {1: 1.0}, 5) == [1] * 5
        assert blas.worker_count() == 1
