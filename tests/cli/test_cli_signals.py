"""Ctrl-C saves and stops cleanly; SIGKILL at any moment leaves a loadable checkpoint."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from chainrule.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def start_training(checkpoint, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--quiet",
            "--epochs",
            "2000",
            "--hidden",
            "20",
            "--save",
            str(checkpoint),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def test_ctrl_c_saves_at_a_step_boundary_and_resume_continues(tmp_path):
    checkpoint = tmp_path / "run.npz"
    process = start_training(checkpoint, "--save-every", "50")
    wait_for(checkpoint, process)  # training has started
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted at step" in lines[0] and "--resume" in lines[0]
    step = int(lines[0].split("interrupted at step ")[1].split(";")[0])
    saved = load_checkpoint(checkpoint)
    assert saved.step == step >= 1
    assert len(saved.meta["history"]["losses"]) == step
    # the interrupted run continues: train 10 more steps from where it stopped
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--quiet",
            "--resume",
            str(checkpoint),
            "--iters",
            str(step + 10),
            "--save",
            str(checkpoint),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(checkpoint).step == step + 10


def test_sigkill_at_random_moments_never_leaves_a_broken_checkpoint(tmp_path):
    rng = random.Random(0)
    for attempt in range(6):
        checkpoint = tmp_path / f"run{attempt}.npz"
        process = start_training(checkpoint, "--save-every", "3")
        wait_for(checkpoint, process)
        time.sleep(rng.uniform(0.0, 1.0))  # anywhere, including in the middle of a save
        assert process.poll() is None  # still training (2000 epochs) when killed
        process.kill()
        process.communicate()
        assert process.returncode == -signal.SIGKILL
        saved = load_checkpoint(checkpoint)  # raises if the file were half-written
        assert saved.step >= 3 and saved.step % 3 == 0
        assert len(saved.meta["history"]["losses"]) == saved.step
        assert all(np.isfinite(p).all() for p in saved.params.values())
