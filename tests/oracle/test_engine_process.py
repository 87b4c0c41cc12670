"""The second half of a split batch in a forked process (chainrule.engine.process): the
same bits as on one thread, step after step; a child that dies, hangs or fails hands its
part back to the parent, which computes it; a child ends with its step and with its
parent; and none is made where forks are off."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_engine_halves import _stack

import chainrule.engine.step as step_module
from chainrule.engine import Step
from chainrule.engine.process import Child, forks
from chainrule.networks import SimpleConvNet

pytestmark = pytest.mark.skipif(not forks(), reason="parts run in forked processes on Linux")


@pytest.fixture(autouse=True)
def always_split(monkeypatch):
    monkeypatch.setattr(step_module, "_SPLIT_MULTIPLIES", 0)


def _sgd_steps(threads, steps=3, dtype=np.float64, between=None):
    """The parameters after ``steps`` SGD steps (dropout drawn anew each), and the step."""
    net, x, t = _stack(dtype)
    step = Step(net, threads=threads)
    losses = []
    for i in range(steps):
        losses.append(step.sgd_step(x, t, 0.1))
        if between is not None:
            between(step, i)
    return losses, {key: value.copy() for key, value in net.params.items()}, step


def _assert_same(result, expected):
    assert result[0] == expected[0]
    for key, value in expected[1].items():
        np.testing.assert_array_equal(result[1][key], value, err_msg=key)


def _ended(pid):
    """Whether process ``pid`` has exited (a zombie counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_second_half_runs_in_a_child_with_one_threads_bits(dtype):
    alone = _sgd_steps(1, dtype=dtype)
    beside = _sgd_steps(2, dtype=dtype)
    child = beside[2]._train.child
    assert isinstance(child, Child) and child.alive and child.pid != os.getpid()
    _assert_same(beside, alone)  # new parameters and dropout masks reach it each step


def test_no_child_where_forks_are_off(monkeypatch):
    monkeypatch.setenv("CHAINRULE_FORK", "0")
    threads = _sgd_steps(2)
    assert threads[2]._train.child is None
    _assert_same(threads, _sgd_steps(1))


def _kill(step, i):
    if i == 0:
        os.kill(step._train.child.pid, signal.SIGKILL)
        time.sleep(0.2)


@pytest.mark.parametrize("mishap", ["killed", "failing"])
def test_a_child_that_dies_or_fails_hands_its_part_back(monkeypatch, mishap):
    expected = _sgd_steps(1)
    if mishap == "failing":  # the child's second request raises, in the child
        serve, calls = Step._serve, []

        def flaky(self, *args):
            calls.append(1)  # the child's own list: the parent never serves
            if len(calls) > 1:
                raise RuntimeError("sabotaged")
            serve(self, *args)

        monkeypatch.setattr(Step, "_serve", flaky)
    result = _sgd_steps(2, between=_kill if mishap == "killed" else None)
    assert result[2]._train.child is False  # threads from then on
    _assert_same(result, expected)


def test_a_child_that_hangs_is_given_up(monkeypatch):
    monkeypatch.setattr(step_module, "_LEAST_WAIT_S", 0.5)
    monkeypatch.setattr(step_module, "_WAIT_FACTOR", 0.0)
    stopped = []

    def stop(step, i):
        if i == 0:
            stopped.append(step._train.child.pid)
            os.kill(stopped[0], signal.SIGSTOP)

    result = _sgd_steps(2, between=stop)
    assert result[2]._train.child is False and _ended(stopped[0])
    _assert_same(result, _sgd_steps(1))


def _interrupted(threads, monkeypatch):
    """A step, one interrupted in the first half, and one more: the last's results."""
    net, x, t = _stack(np.float64)
    step = Step(net, threads=threads)
    step.loss_and_gradient(x, t)
    child = step._train.child
    interrupt = lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)  # noqa: E731
    with monkeypatch.context() as patch:
        patch.setattr(step._train.parts[0][0], "forward", interrupt)
        with pytest.raises(KeyboardInterrupt):
            step.loss_and_gradient(x, t)
    return child, step, step.loss_and_gradient(x, t)


def test_an_interrupted_step_ends_its_child_and_the_next_makes_another(monkeypatch):
    child, step, result = _interrupted(2, monkeypatch)
    assert not child.alive and _ended(child.pid)
    assert step._train.child.pid != child.pid
    _assert_same(result, _interrupted(1, monkeypatch)[2])


def test_a_child_ends_with_its_plan_and_its_step():
    net, x, t = _stack(np.float64)
    step = Step(net, threads=2)
    step.loss_and_gradient(x, t)
    first = step._train.child.pid
    step.loss_and_gradient(x[:7], t[:7])  # another batch shape: another plan
    assert _ended(first)
    second = step._train.child.pid
    del step
    gc.collect()
    assert _ended(second)


def test_a_child_ignores_ctrl_c_and_ends_on_sigterm_whatever_the_parent_does():
    previous = signal.signal(signal.SIGTERM, lambda *args: None)  # the parent's own
    try:
        net, x, t = _stack(np.float64)
        step = Step(net, threads=2)
        step.loss_and_gradient(x, t)
        pid = step._train.child.pid
        os.kill(pid, signal.SIGINT)
        time.sleep(0.2)
        assert not _ended(pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _ended(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ended(pid)
        result = step.loss_and_gradient(x, t)  # the parent computes the half itself
        assert step._train.child is False
    finally:
        signal.signal(signal.SIGTERM, previous)
    net, x, t = _stack(np.float64)
    alone = Step(net, threads=1)
    alone.loss_and_gradient(x, t)
    _assert_same(result, alone.loss_and_gradient(x, t))


def test_a_fork_of_the_parent_makes_a_child_of_its_own(tmp_path):
    """A process forked from one with a child (a multiprocessing worker, say) shares the
    child's memory and socket: it must make its own, and leave the parent's alone."""
    net, x, t = _stack(np.float64)
    step = Step(net, threads=2)
    step.loss_and_gradient(x, t)
    parents = step._train.child
    pid = os.fork()
    if pid == 0:  # the fork: its own child, the same numbers as the parent's next step
        code = 1
        try:
            _, grads = step.loss_and_gradient(x, t)
            mine = step._train.child
            ok = mine is not parents and mine.pid != parents.pid and parents.alive
            np.save(tmp_path / "forked.npy", grads["W1"])
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    forked = np.load(tmp_path / "forked.npy")
    assert step._train.child is parents and not _ended(parents.pid)
    _, grads = step.loss_and_gradient(x, t)  # the parent's child still serves it
    np.testing.assert_array_equal(grads["W1"], forked)


def test_a_child_ends_when_its_parent_dies(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        import numpy as np
        import chainrule.engine.step as step_module
        from chainrule.engine import Step
        from chainrule.networks import SimpleConvNet
        step_module._SPLIT_MULTIPLIES = 0
        net = SimpleConvNet(seed=0)
        x, t = np.random.default_rng(0).random((8, 1, 28, 28)), np.arange(8) % 10
        step = Step(net, threads=2)
        step.loss_and_gradient(x, t)
        print(step._train.child.pid, flush=True)
        os._exit(0)  # no exit handlers: only the child's own watch can end it
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    deadline = time.monotonic() + 10
    while not _ended(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _ended(pid)


def test_a_split_network_without_dropout_runs_beside_too():
    rng = np.random.default_rng(1)
    x, t = rng.random((6, 1, 28, 28)), rng.integers(0, 10, 6)
    results = []
    for threads in (1, 2):
        step = Step(SimpleConvNet(seed=0), threads=threads)
        results.append(step.loss_and_gradient(x, t))
    assert isinstance(step._train.child, Child)
    _assert_same(results[1], results[0])
