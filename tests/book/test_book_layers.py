"""The book's own networks compute the same on chainrule's layers as on the book's.

The book's chapter 7 ``SimpleConvNet`` and chapter 8 ``DeepConvNet`` classes, from the
book-shaped reference tree in ``tests/book_checkout`` (written in the project's words to
compute as the book's files do), are imported twice: once on the
book's ``common/layers.py``, once with ``chainrule.layers`` in its place, as ``chainrule
run`` runs the book's scripts. From the same weights, on the same digits (the same
dropout masks, drawn from NumPy's global generator as the book's are), both give the same
gradients and predictions, float64, to 1e-12 of each array's largest entry; the loss is
the book's less the ``+1e-7`` the book adds inside its log (chainrule's SoftmaxWithLoss
takes a log-softmax instead).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule.layers
from chainrule.data import load_mnist

REFERENCE = Path(__file__).resolve().parents[1] / "book_checkout"
NETWORKS = [
    ("ch07", "simple_convnet", "SimpleConvNet", 4),
    ("ch08", "deep_convnet", "DeepConvNet", 3),
]


@pytest.fixture
def book_network(monkeypatch):
    """``load(folder, module, name, layers)``: the book's network class, its file imported
    with ``layers`` ("book" or "chainrule") as ``common.layers``."""
    monkeypatch.syspath_prepend(str(REFERENCE))  # the book's files find `common` here
    for name in [m for m in sys.modules if m == "common" or m.startswith("common.")]:
        monkeypatch.delitem(sys.modules, name)

    def load(folder, module, name, layers):
        if layers == "chainrule":
            monkeypatch.setitem(sys.modules, "common.layers", chainrule.layers)
        else:
            monkeypatch.delitem(sys.modules, "common.layers", raising=False)
        spec = importlib.util.spec_from_file_location(
            f"book_{module}_on_{layers}", REFERENCE / folder / f"{module}.py"
        )
        network_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(network_module)
        return getattr(network_module, name)

    yield load
    for name in [m for m in sys.modules if m == "common" or m.startswith("common.")]:
        sys.modules.pop(name)


def digits(count):
    (x, t), _ = load_mnist(flatten=False)
    return x[:count].astype(np.float64), t[:count]


def assert_same(ours, books, what):
    """Equal to 1e-12 of the array's largest entry: the products sum in another order."""
    assert np.shape(ours) == np.shape(books), what
    assert np.max(np.abs(ours - books)) <= 1e-12 * np.max(np.abs(books)), what


def layers_of(net):
    """The book keeps SimpleConvNet's layers in an OrderedDict, DeepConvNet's in a list."""
    return list(net.layers.values()) if isinstance(net.layers, dict) else net.layers


def draw_masks_as_the_book(net):
    """Point each of chainrule's Dropout layers at NumPy's global generator, which the
    book's Dropout draws from, so that the same seed gives both the same masks."""
    for layer in layers_of(net):
        if isinstance(layer, chainrule.layers.Dropout):
            layer.rng = np.random.Generator(np.random.get_bit_generator())


@pytest.mark.parametrize(("folder", "module", "name", "batch"), NETWORKS)
def test_the_books_networks_compute_the_same_on_chainrules_layers(
    book_network, folder, module, name, batch
):
    x, t = digits(batch)
    nets, grads = {}, {}
    for layers in ("book", "chainrule"):
        np.random.seed(0)  # noqa: NPY002 (the book's networks draw their weights from it)
        nets[layers] = book_network(folder, module, name, layers)()
        for key in [key for key in nets[layers].params if key.startswith("b")]:
            # Positive biases: the digits' blank background then gives equal positive values
            # across pooling windows, ties whose gradient ReLU lets through.
            nets[layers].params[key][...] = 0.05
        if layers == "chainrule":
            draw_masks_as_the_book(nets[layers])
        np.random.seed(1)  # noqa: NPY002 (and the book's Dropout its masks)
        grads[layers] = nets[layers].gradient(x, t)
    book, ours = nets["book"], nets["chainrule"]
    assert {type(layer).__module__ for layer in layers_of(ours)} == {"chainrule.layers"}
    assert {type(layer).__module__ for layer in layers_of(book)} == {"common.layers"}
    assert sorted(grads["chainrule"]) == sorted(grads["book"]) == sorted(book.params)
    for key in grads["book"]:
        assert_same(grads["chainrule"][key], grads["book"][key], key)
    exact = -np.mean(np.log(book.last_layer.y[np.arange(batch), t]))  # the book's, no +1e-7
    assert ours.last_layer.loss == pytest.approx(exact, rel=1e-12)
    assert abs(book.last_layer.loss - exact) < 1e-5  # the book's +1e-7 inside its log
    assert_same(ours.predict(x), book.predict(x), "predict")
