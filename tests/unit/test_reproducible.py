"""The same seed and data give the same numbers, bit for bit: beside a busy process, on any
number of threads, and through a resume (what the README promises)."""

import json
import subprocess
import sys

import pytest

from chainrule.checkpoint import load_checkpoint

# Products of these networks are cut into blocks (chainrule.blas), so the thread count
# matters to them; and long enough for the tuner to try more threads (after 0.05 s).
MLP = ["--hidden", "256", "256", "--batch-size", "100"]
EPOCHS = 6  # 40 steps an epoch on mnist-5k's 4,000 training images


def train(tmp_path, name, *flags):
    """Run ``chainrule train`` and return its JSON report's history."""
    report = tmp_path / f"{name}.json"
    command = [sys.executable, "-m", "chainrule", "train", *flags, "--quiet"]
    subprocess.run([*command, "--json", str(report)], check=True, timeout=300)
    return json.loads(report.read_text(encoding="utf-8"))["history"]


@pytest.fixture
def busy_neighbour():
    """A process that keeps one core busy for as long as the test runs."""
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    neighbour.kill()
    neighbour.wait()


def assert_same_run(first, second):
    """The same loss at every step, and the same evaluations at the steps both made one
    (a run that stopped to be resumed also evaluated where it stopped)."""
    assert len(first["losses"]) == len(second["losses"])
    differ = [i for i, (a, b) in enumerate(zip(first["losses"], second["losses"])) if a != b]
    assert not differ, f"the losses differ from step {differ[0] + 1} on ({len(differ)} steps)"
    evaluations = [{e["step"]: e for e in run["evaluations"]} for run in (first, second)]
    both = evaluations[0].keys() & evaluations[1].keys()
    assert max(both) == len(first["losses"])  # the last one included
    assert [evaluations[0][s] for s in sorted(both)] == [evaluations[1][s] for s in sorted(both)]


def assert_same_weights(first, second):
    first, second = (load_checkpoint(path).params for path in (first, second))
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].tobytes() == second[key].tobytes(), key


@pytest.mark.usefixtures("busy_neighbour")
def test_two_runs_and_a_resumed_one_agree_bit_for_bit_beside_a_busy_process(tmp_path):
    epochs = ["--epochs", str(EPOCHS)]
    ends = [str(tmp_path / f"{name}-end.npz") for name in ("first", "second", "resumed")]
    first = train(tmp_path, "first", *MLP, *epochs, "--save", ends[0])
    assert len(first["losses"]) == 40 * EPOCHS
    assert_same_run(first, train(tmp_path, "second", *MLP, *epochs, "--save", ends[1]))
    checkpoint = str(tmp_path / "half.npz")
    train(tmp_path, "half", *MLP, "--epochs", str(EPOCHS // 2), "--save", checkpoint)
    resumed = train(tmp_path, "resumed", "--resume", checkpoint, *epochs, "--save", ends[2])
    assert_same_run(first, resumed)
    assert_same_weights(ends[0], ends[1])
    assert_same_weights(ends[0], ends[2])


@pytest.mark.parametrize(
    "flags",
    [
        [*MLP, "--epochs", "2"],
        ["--model", "convnet", "--iters", "12", "--batch-size", "50"],
        [*MLP, "--epochs", "1", "--batchnorm", "--dropout", "0.2"],
    ],
    ids=["mlp", "convnet", "batchnorm-dropout"],
)
def test_any_thread_count_gives_the_same_run(tmp_path, flags):
    one = train(tmp_path, "one", *flags, "--threads", "1")
    assert_same_run(one, train(tmp_path, "two", *flags, "--threads", "2"))
    assert_same_run(one, train(tmp_path, "three", *flags, "--threads", "3"))


def test_a_convnet_resumed_on_other_thread_counts_continues_bit_for_bit(tmp_path):
    convnet = ["--model", "convnet", "--batch-size", "50"]
    straight = train(tmp_path, "straight", *convnet, "--iters", "12", "--threads", "1")
    checkpoint = str(tmp_path / "half.npz")
    train(tmp_path, "half", *convnet, "--iters", "6", "--threads", "2", "--save", checkpoint)
    resumed = train(tmp_path, "resumed", "--resume", checkpoint, "--iters", "12", "--threads", "3")
    assert_same_run(straight, resumed)


def test_a_thread_count_that_is_not_a_positive_integer_is_a_usage_error():
    command = [sys.executable, "-m", "chainrule", "train", "--threads", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--threads" in done.stderr
