"""``chainrule run``: the book's scripts on chainrule print what they print on the book's code.

tests/book_checkout is a checkout shaped like the book's repository, holding this
project's book-shaped reference code (see its README). Each script runs twice, each
time in a fresh copy of the checkout: by plain ``python`` on the reference code, and by
``chainrule run`` on chainrule's stand-ins. Both read the embedded mnist-5k digits; the
scripts seed NumPy's global generator, so the two runs must print the same numbers:
every loss, accuracy and gradient to 1e-12 (relative), in float64.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

CHECKOUT = Path(__file__).parents[1] / "book_checkout"
MNIST_5K = Path(__file__).parents[2] / "chainrule" / "data" / "mnist_5k.npz"
NUMBER = re.compile(r"-?\d+\.?\d*(?:e-?\d+)?")


def sample_weights() -> dict[str, np.ndarray]:
    """Weights of chapter 3's 784-50-100-10 network, for its sample_weight.pkl."""
    rng = np.random.default_rng(3)
    sizes = (784, 50, 100, 10)
    weights = {}
    for i, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
        weights[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) * 0.1
        weights[f"b{i}"] = rng.standard_normal(fan_out) * 0.01
    return weights


def fresh_checkout(root: Path) -> Path:
    shutil.copytree(CHECKOUT, root, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "ch03" / "sample_weight.pkl", "wb") as handle:
        pickle.dump(sample_weights(), handle, protocol=2)
    return root


def run_script(root: Path, script: str, *args: str, chainrule: bool) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` or ``chainrule run --dataset mnist-5k SCRIPT ARGS``, run
    in the script's folder as the book's README says to."""
    folder, name = (root / script).parent, Path(script).name
    runner = ["-m", "chainrule", "run", "--dataset", "mnist-5k"] if chainrule else []
    return subprocess.run(
        [sys.executable, *runner, name, *args],
        cwd=folder,
        env={**os.environ, "BOOK_MNIST_NPZ": str(MNIST_5K)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def both(tmp_path: Path, script: str, *args: str) -> tuple[str, str]:
    """The stdout of the book-shaped code and of chainrule, each in a fresh checkout."""
    book = run_script(fresh_checkout(tmp_path / "book"), script, *args, chainrule=False)
    ours = run_script(fresh_checkout(tmp_path / "ours"), script, *args, chainrule=True)
    assert book.returncode == 0, book.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr.startswith("chainrule run: chainrule stands in for common.{"), ours.stderr
    return book.stdout, ours.stdout


def assert_same_numbers(book: str, ours: str, rtol: float = 1e-12) -> None:
    """The same lines, the same words, and numbers equal to ``rtol``."""
    book_lines, our_lines = book.splitlines(), ours.splitlines()
    assert len(book_lines) == len(our_lines), (book, ours)
    for expected, got in zip(book_lines, our_lines):
        assert NUMBER.sub("#", expected) == NUMBER.sub("#", got), (expected, got)
        want = [float(n) for n in NUMBER.findall(expected)]
        have = [float(n) for n in NUMBER.findall(got)]
        np.testing.assert_allclose(have, want, rtol=rtol, atol=0, err_msg=got)


def losses(stdout: str, prefix: str) -> list[float]:
    return [float(line.split(":")[1]) for line in stdout.splitlines() if line.startswith(prefix)]


def test_ch03_inference_with_the_pickled_weights(tmp_path):
    book, ours = both(tmp_path, "ch03/neuralnet_mnist.py")
    assert_same_numbers(book, ours)
    # the book's load_mnist: float32 images (N, 784), uint8 labels
    assert ours.splitlines()[0] == "data float32 (1000, 784) uint8 (1000,)"


def test_ch04_sigmoid_network_and_numerical_gradient(tmp_path):
    # chapter 4's two_layer_net is the book's own file (from the checkout), on chainrule's
    # common.functions and common.gradient
    book, ours = both(tmp_path, "ch04/train_neuralnet.py")
    assert_same_numbers(book, ours)
    assert ours.splitlines()[0] == "data float32 (4000, 784) float64 (4000, 10)"
    assert len(losses(ours, "loss:")) == 30
    book, ours = both(tmp_path / "simplenet", "ch04/gradient_simplenet.py")
    assert_same_numbers(book, ours)


def test_ch05_gradient_check(tmp_path):
    book, ours = both(tmp_path, "ch05/gradient_check.py")
    # Backprop against central differences: small on both (the book's 1e-7 inside the
    # log, which backprop leaves out, makes most of it), and the same on both to the
    # rounding of the losses the differences divide (1e-16 of a loss near 2.3, by 2h)
    assert len(ours.splitlines()) == 8
    for expected, got in zip(book.splitlines(), ours.splitlines()):
        assert got.split(":")[0] == expected.split(":")[0]
        assert float(got.split(":")[1]) == pytest.approx(float(expected.split(":")[1]), abs=1e-9)
    assert max(float(line.split(":")[1]) for line in ours.splitlines()[::2]) < 1e-6


def test_ch05_training_gives_the_books_loss_curve(tmp_path):
    book, ours = both(tmp_path, "ch05/train_neuralnet.py", "60")
    assert_same_numbers(book, ours)
    curve = losses(ours, "loss:")
    assert len(curve) == 60 and curve[-1] < curve[0] - 0.2  # it learns


def test_ch06_the_six_optimisers_as_the_books(tmp_path):
    book, ours = both(tmp_path, "ch06/optimizer_compare_mnist.py")
    assert_same_numbers(book, ours)
    assert ours.splitlines()[0] == "data float32 (4000, 784) uint8 (4000,)"


@pytest.mark.parametrize("optimizer", ["adam", "SGD"])
def test_ch06_trainer_with_dropout_and_batch_norm(tmp_path, optimizer):
    book, ours = both(tmp_path, "ch06/overfit_dropout.py", optimizer)
    assert_same_numbers(book, ours)
    lines = ours.splitlines()
    # the book's Trainer prints a loss line per step, an epoch line after the first step
    # of each epoch (300 images, batches of 100: steps 1, 4 and 7), then the final accuracy
    assert len(losses(ours, "train loss:")) == 9
    assert [i for i, line in enumerate(lines) if line.startswith("=== epoch:")] == [1, 5, 9]
    assert lines[-3] == "=============== Final Test Accuracy ==============="


def test_ch07_convnet_trains_saves_and_loads_as_the_books(tmp_path):
    book, ours = both(tmp_path, "ch07/train_convnet.py")
    assert_same_numbers(book, ours)
    assert len(losses(ours, "train loss:")) == 10
    # the saved file is the book's pickle of a dict of arrays: the book's own code loads it
    saved = tmp_path / "ours" / "ch07" / "params.pkl"
    with open(saved, "rb") as handle:
        params = pickle.load(handle)
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert params["W1"].shape == (8, 1, 5, 5) and params["W1"].dtype == np.float64


def test_ch08_deep_network_with_the_books_dropout_masks(tmp_path):
    # DeepConvNet's loss runs a training forward: each step draws four dropout masks from
    # NumPy's global generator, between the batches, in the book's order
    book, ours = both(tmp_path, "ch08/train_deepnet.py")
    assert_same_numbers(book, ours)
    assert len(losses(ours, "train loss:")) == 4
    with open(tmp_path / "ours" / "ch08" / "deep_convnet_params.pkl", "rb") as handle:
        assert sorted(pickle.load(handle)) == sorted(f"{p}{i}" for p in "Wb" for i in range(1, 9))


@pytest.mark.parametrize("script", ["ch07/train_convnet.py", "ch08/train_deepnet.py"])
def test_book_layers_keeps_the_books_network_classes(tmp_path, script):
    # --book-layers: the checkout's own simple_convnet.py and deep_convnet.py, on
    # chainrule's common.layers (their load_params' pickle.load reads arrays only)
    root = fresh_checkout(tmp_path / "layers")
    folder, name = (root / script).parent, Path(script).name
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "run", "--dataset", "mnist-5k", "--book-layers",
         name],
        cwd=folder, env={**os.environ, "BOOK_MNIST_NPZ": str(MNIST_5K)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = done.stderr.splitlines()[0]
    assert "convnet" not in summary and "multi_layer_net" not in summary
    book = run_script(fresh_checkout(tmp_path / "book"), script, chainrule=False)
    assert_same_numbers(book.stdout, done.stdout)
