# ruff: noqa: NPY002 (the book's functions draw from NumPy's global generator)
"""chainrule.book's modules compute what the book's do, function by function and step by
step, against the book-shaped reference code in tests/book_checkout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.book import functions, gradient, layers, optimizer, util

REFERENCE = Path(__file__).parents[1] / "book_checkout" / "common"


@pytest.fixture(scope="module")
def book():
    """The reference common/ modules, imported under the book's names for this module."""
    saved = {name: sys.modules.pop(name, None) for name in ("common", "common.functions")}
    modules = {}
    try:
        package = importlib.util.spec_from_file_location(
            "common", REFERENCE / "__init__.py", submodule_search_locations=[str(REFERENCE)]
        )
        sys.modules["common"] = importlib.util.module_from_spec(package)
        for name in ("functions", "util", "gradient", "optimizer", "layers"):
            spec = importlib.util.spec_from_file_location(
                f"common.{name}", REFERENCE / f"{name}.py"
            )
            module = importlib.util.module_from_spec(spec)
            sys.modules[f"common.{name}"] = module
            spec.loader.exec_module(module)
            modules[name] = module
        yield modules
    finally:
        for name in ("common", *(f"common.{n}" for n in modules)):
            sys.modules.pop(name, None)
        sys.modules.update({k: v for k, v in saved.items() if v is not None})


def test_the_functions_are_the_books(book):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 10)) * 3
    ref = book["functions"]
    for name in ("identity_function", "step_function", "relu", "relu_grad"):
        np.testing.assert_array_equal(getattr(functions, name)(x), getattr(ref, name)(x))
    for name in ("sigmoid", "sigmoid_grad", "softmax"):
        np.testing.assert_allclose(getattr(functions, name)(x), getattr(ref, name)(x), rtol=1e-14)
    y, labels = ref.softmax(x), np.array([1, 0, 9, 3])
    one_hot = np.eye(10)[labels]
    for t in (labels, one_hot):
        assert functions.cross_entropy_error(y, t) == pytest.approx(
            ref.cross_entropy_error(y, t), rel=1e-15
        )
        assert functions.softmax_loss(x, t) == pytest.approx(ref.softmax_loss(x, t), rel=1e-14)
    # one sample, (C,) against a label or a one-hot row, as chapter 4 calls it
    assert functions.cross_entropy_error(y[0], one_hot[0]) == ref.cross_entropy_error(
        y[0], one_hot[0]
    )
    assert functions.sum_squared_error(y, one_hot) == ref.sum_squared_error(y, one_hot)


def test_util_and_gradient_are_the_books(book):
    rng = np.random.default_rng(1)
    images = rng.standard_normal((2, 3, 7, 7))
    for size, stride, pad in ((3, 1, 0), (3, 2, 1), (2, 2, 0), (5, 1, 2)):
        col = util.im2col(images, size, size, stride, pad)
        np.testing.assert_array_equal(col, book["util"].im2col(images, size, size, stride, pad))
        back = util.col2im(col, images.shape, size, size, stride, pad)
        want = book["util"].col2im(col, images.shape, size, size, stride, pad)
        np.testing.assert_allclose(back, want, rtol=1e-14, atol=1e-14)
    assert util.conv_output_size(28, 5) == book["util"].conv_output_size(28, 5) == 24.0
    x, t = rng.standard_normal((20, 4)), np.arange(20)
    np.random.seed(3)
    ours = util.shuffle_dataset(x, t)
    np.random.seed(3)
    theirs = book["util"].shuffle_dataset(x, t)
    np.testing.assert_array_equal(ours[1], theirs[1])
    losses = rng.standard_normal(30)
    np.testing.assert_allclose(
        util.smooth_curve(losses), book["util"].smooth_curve(losses), rtol=1e-14
    )
    W = rng.standard_normal((2, 3))

    def f(w):
        return np.sum(np.sin(w) * W)

    np.testing.assert_array_equal(gradient.numerical_gradient(f, W.copy()),
                                  book["gradient"].numerical_gradient(f, W.copy()))  # fmt: skip


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"])
def test_the_optimisers_are_the_books_bit_for_bit(book, name):
    rng = np.random.default_rng(2)
    # parameters small beside their steps, so that every bit of a step shows in them
    start = {"W": 1e-6 * rng.standard_normal((3, 4)), "b": 1e-6 * rng.standard_normal(4)}
    ours, theirs = getattr(optimizer, name)(), getattr(book["optimizer"], name)()
    mine = {k: v.copy() for k, v in start.items()}
    reference = {k: v.copy() for k, v in start.items()}
    for _ in range(8):
        # gradients of many sizes, so that no two entries round alike
        grads = {
            k: rng.standard_normal(v.shape) * 10.0 ** rng.uniform(-4, 2, v.shape)
            for k, v in start.items()
        }
        ours.update(mine, grads)
        theirs.update(reference, {k: g.copy() for k, g in grads.items()})
    for key in start:
        np.testing.assert_array_equal(mine[key], reference[key])


def test_the_layers_give_the_books_loss_and_masks(book):
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((5, 10)), np.array([0, 3, 9, 9, 1])
    ours, theirs = layers.SoftmaxWithLoss(), book["layers"].SoftmaxWithLoss()
    assert ours.forward(x, t) == pytest.approx(theirs.forward(x, t), rel=1e-15)
    np.testing.assert_allclose(ours.backward(), theirs.backward(), rtol=1e-14)
    hidden = rng.standard_normal((6, 8))
    np.random.seed(5)
    dropped = layers.Dropout(0.3).forward(hidden)
    np.random.seed(5)
    np.testing.assert_array_equal(dropped, book["layers"].Dropout(0.3).forward(hidden))
    gamma, beta = np.ones(8), np.zeros(8)
    norms = layers.BatchNormalization(gamma, beta), book["layers"].BatchNormalization(gamma, beta)
    for norm in norms:
        norm.forward(hidden)  # one training step, then inference by the running statistics
    np.testing.assert_allclose(
        norms[0].forward(hidden, False), norms[1].forward(hidden, False), rtol=1e-13
    )
