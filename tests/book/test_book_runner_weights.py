# ruff: noqa: NPY002 (the book's networks draw from NumPy's global generator)
"""The book's weight files: loaded by its networks' load_params, converted to checkpoints,
and chapter 8's two experiments on them (show-mistakes, evaluate --dtype float16)."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from chainrule.book.networks import DeepConvNet, MultiLayerNet, SimpleConvNet
from chainrule.checkpoint import load_checkpoint
from chainrule.data import load_mnist


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def book_pickle(path, params: dict, protocol: int = 4) -> None:
    """What the book's save_params writes: pickle.dump of a dict of the arrays."""
    with open(path, "wb") as handle:
        pickle.dump({key: np.array(value) for key, value in params.items()}, handle, protocol)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("network", [SimpleConvNet, DeepConvNet])
def test_load_params_reads_the_books_pickle(tmp_path, network, protocol):
    np.random.seed(protocol)
    trained, fresh = network(), network()
    book_pickle(tmp_path / "params.pkl", trained.params, protocol)
    arrays = {key: id(param) for key, param in fresh.params.items()}
    fresh.load_params(tmp_path / "params.pkl")
    for key, param in fresh.params.items():
        np.testing.assert_array_equal(param, trained.params[key])
        assert id(param) == arrays[key]  # copied into the arrays the layers hold
    x = np.random.rand(3, 1, 28, 28)
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))


def trained_convnet() -> SimpleConvNet:
    """A small SimpleConvNet trained well enough to get most, not all, digits right."""
    from chainrule.book.trainer import Trainer

    np.random.seed(0)
    network = SimpleConvNet(conv_param={"filter_num": 6, "filter_size": 5}, hidden_size=30)
    (x, t), (xt, tt) = load_mnist(flatten=False)
    Trainer(network, x, t, xt, tt, epochs=2, optimizer="adam",
            optimizer_param={"lr": 0.003}, verbose=False).train()  # fmt: skip
    return network


@pytest.fixture(scope="module")
def convnet_pickle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    network = trained_convnet()
    book_pickle(folder / "params.pkl", network.params)
    return network, folder


def test_convert_writes_a_checkpoint_evaluate_reads(convnet_pickle):
    network, folder = convnet_pickle
    done = cli("convert", "params.pkl", "params.npz", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote params.npz: a SimpleConvNet (W1 6×1×5×5, b1 6,")
    checkpoint = load_checkpoint(folder / "params.npz")
    assert checkpoint.meta["network"]["input_dim"] == [1, 28, 28]
    for key, param in network.params.items():
        np.testing.assert_array_equal(checkpoint.params[key], param)
    done = cli("evaluate", "params.npz", "--dataset", "mnist-5k", cwd=folder)
    assert done.returncode == 0, done.stderr
    _, (xt, tt) = load_mnist(flatten=False)
    assert f"test  accuracy {network.accuracy(xt, tt):.4f}" in done.stdout


def test_convert_finds_chapter_3s_sigmoid_network(tmp_path):
    rng = np.random.default_rng(3)
    sizes = (784, 50, 100, 10)
    weights = {}
    for i in range(1, 4):
        weights[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])).astype(np.float32)
        weights[f"b{i}"] = rng.standard_normal(sizes[i]).astype(np.float32)
    book_pickle(tmp_path / "sample_weight.pkl", weights, 2)
    done = cli("convert", "--activation", "sigmoid", "sample_weight.pkl", "w.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    network = load_checkpoint(tmp_path / "w.npz").meta["network"]
    assert network["hidden_size_list"] == [50, 100] and network["activation"] == "sigmoid"
    assert network["dtype"] == "float32"


def test_convert_refuses_a_payload_and_writes_nothing(tmp_path):
    target = tmp_path / "written"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    (tmp_path / "params.pkl").write_bytes(pickle.dumps({"W1": Payload()}))
    done = cli("convert", "params.pkl", "out.npz", cwd=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("chainrule: error: params.pkl: refused to load: the pickle names ")
    assert not target.exists() and not (tmp_path / "out.npz").exists()


def test_convert_refuses_arrays_of_no_book_network(tmp_path):
    book_pickle(tmp_path / "odd.pkl", {"W1": np.ones((3, 4)), "b1": np.ones(5)})
    done = cli("convert", "odd.pkl", "out.npz", cwd=tmp_path)
    assert done.returncode == 1
    assert "odd.pkl" in done.stderr and "b1" in done.stderr and "Traceback" not in done.stderr


def test_show_mistakes_names_and_draws_the_wrong_digits(convnet_pickle):
    network, folder = convnet_pickle
    done = cli("show-mistakes", "params.pkl", "--dataset", "mnist-5k", "-o", "m.png", cwd=folder)
    assert done.returncode == 0, done.stderr
    _, (xt, tt) = load_mnist(flatten=False)
    predicted = network.predict(xt).argmax(axis=1)
    wrong = np.flatnonzero(predicted != tt)
    assert 0 < len(wrong) < 500
    assert done.stdout.splitlines()[0] == (
        f"test accuracy {1 - len(wrong) / 1000:.4f}: {len(wrong)} of 1000 images of mnist-5k wrong"
    )
    pairs = {view: (int(tt[i]), int(predicted[i])) for view, i in enumerate(wrong[:20], 1)}
    assert f"{{view: (label, inference)}}: {pairs}" in done.stdout
    assert (folder / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_float16_is_the_books_half_float_experiment(convnet_pickle):
    network, folder = convnet_pickle
    cli("convert", "params.pkl", "half.npz", cwd=folder)
    done = cli("evaluate", "half.npz", "--dataset", "mnist-5k", "--dtype", "float16", cwd=folder)
    assert done.returncode == 0, done.stderr
    _, (xt, tt) = load_mnist(flatten=False)
    before = network.predict(xt).argmax(axis=1)
    # the book's half_float_network.py: weights and images rounded to float16 values
    for param in network.params.values():
        param[...] = param.astype(np.float16)
    after = network.predict(xt.astype(np.float16)).argmax(axis=1)
    lines = done.stdout.splitlines()
    where = "(1000 test images of mnist-5k)"
    assert lines[0] == f"float64 accuracy {np.mean(before == tt):.4f}  {where}"
    assert re.match(rf"float16 accuracy {np.mean(after == tt):.4f}  \(weights and images", lines[1])
    assert lines[2] == f"{int(np.count_nonzero(before != after))} of 1000 predictions change"


def test_the_fully_connected_stand_in_loads_through_convert(tmp_path):
    np.random.seed(1)
    network = MultiLayerNet(784, [20], 10)
    book_pickle(tmp_path / "mlp.pkl", network.params)
    done = cli("show-mistakes", "mlp.pkl", "--dataset", "mnist-5k", "-o", "m.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")


def test_half_float_rounds_the_weights_and_restores_them(capsys):
    from chainrule.cli.mistakes import half_float_report
    from chainrule.networks import MultiLayerNet as Network

    # class 1 wins by x·2^-12; float16 (11 significant bits) rounds its weight to 1: a
    # tie, which goes to class 0
    network = Network(1, [], 2, dtype=np.float64)
    network.params["W1"][...] = [[1.0, 1.0 + 2**-12]]
    x, t = np.array([[1.0], [2.0]]), np.array([1, 1])
    half_float_report(network, x, t, "two images")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("float64 accuracy 1.0000")
    assert out[1].startswith("float16 accuracy 0.0000")
    assert out[2] == "2 of 2 predictions change"
    assert network.params["W1"][0, 1] == 1.0 + 2**-12  # as it was


def test_evaluate_float16_reads_the_books_deep_convnet_pickle(tmp_path):
    # half_float_network.py's own case: ch08's DeepConvNet, from its pickle
    np.random.seed(8)
    book_pickle(tmp_path / "deep_convnet_params.pkl", DeepConvNet().params)
    done = cli("evaluate", "deep_convnet_params.pkl", "--dataset", "mnist-5k", "--dtype",
               "float16", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("float64 accuracy ") and lines[1].startswith("float16 accuracy ")
    assert lines[2].endswith(" of 1000 predictions change")


def test_convert_a_deep_convnet_pickle_that_evaluate_reads(tmp_path):
    np.random.seed(9)
    network = DeepConvNet()
    book_pickle(tmp_path / "deep_convnet_params.pkl", network.params)
    done = cli("convert", "deep_convnet_params.pkl", "deep.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote deep.npz: a DeepConvNet (W1 16×1×3×3, b1 16,")
    done = cli("evaluate", "deep.npz", "--dataset", "mnist-5k", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, (xt, tt) = load_mnist(flatten=False)
    assert f"test  accuracy {network.accuracy(xt, tt):.4f}" in done.stdout
