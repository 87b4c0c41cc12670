"""The engine's convolution kernel alone (chainrule.engine.conv.ConvKernel) equals
chainrule.layers.Convolution (and Pooling after it): forward, dx, dW and db, for odd
shapes, both ways of computing the input gradient (stride 1: one product of dy's windows;
other strides: products added back), products one or two outputs wide; and a step's
numbers do not depend on the thread count."""

import numpy as np
import pytest
from engine_helpers import TOLERANCE, assert_same_bits_on_any_thread_count

from chainrule.engine.conv import ConvKernel
from chainrule.layers import Affine, Convolution, Pooling, Relu
from chainrule.networks import Sequential


def _close(got, by_layers, truth, dtype):
    """float64: to 1e-12 of the layers' largest entry. float32: as close to the float64
    layers' numbers as ten times the float32 layers' error, within 1e-5 (a sum that
    cancels, like db's, keeps its terms' rounding on both sides): engine_helpers' rule."""
    assert got.shape == by_layers.shape and got.dtype == dtype
    scale = np.abs(by_layers).max()
    assert scale > 0
    if truth is None:
        assert np.abs(got - by_layers).max() <= TOLERANCE[np.dtype(dtype)] * scale
    else:
        layers_error = np.abs(by_layers - truth).max()
        error = np.abs(got - truth).max()
        assert error <= 10 * layers_error + TOLERANCE[np.dtype(dtype)] * scale


def _by_layers(W, b, stride, pad, pool, x, dy):
    """(y, dx, dW, db) of chainrule.layers' Convolution (and Pooling) on these arrays."""
    conv = Convolution(W, b, stride=stride, pad=pad)
    pooling = Pooling(pool, pool, stride=pool) if pool else None
    y = conv.forward(x) if pooling is None else pooling.forward(conv.forward(x))
    dx = conv.backward(dy if pooling is None else pooling.backward(dy))
    return y, dx, conv.dW, conv.db


def _check(dtype, batch, channels, filters, image, pad, *, stride=1, size=3, pool=None):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((filters, channels, size, size)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    conv = Convolution(W, b, stride=stride, pad=pad)
    kernel = ConvKernel(conv, pool=Pooling(pool, pool, stride=pool) if pool else None)
    x = rng.standard_normal((batch, channels, *image)).astype(dtype)
    shape = kernel.out_shape(x.shape)
    assert shape is not None
    for _ in range(2):  # again, in the buffers of the first call
        dy = rng.standard_normal(shape).astype(dtype)
        y = kernel.forward(x, True)
        got = (y, kernel.backward(dy, True), kernel.grads["W"], kernel.grads["b"])
        expected = _by_layers(W, b, stride, pad, pool, x, dy)
        truths = [None] * 4
        if dtype == np.float32:
            wide = [a.astype(np.float64) for a in (W, b, x, dy)]
            truths = _by_layers(*wide[:2], stride, pad, pool, *wide[2:])
        for g, e, truth in zip(got, expected, truths):
            _close(g, e, truth, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels, filters", [(1, 5), (5, 1), (5, 16), (3, 20)])
@pytest.mark.parametrize("image", [(5, 5), (6, 7), (7, 6)])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_stride_one_convolution_equals_the_layer(dtype, batch, channels, filters, image, pad):
    # 16 filters in float32: products two outputs wide where the width is even; 20: one
    _check(dtype, batch, channels, filters, image, pad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "channels, filters, image, pad, size",
    [
        (2, 4, (7, 7), 1, 3),  # 7×7 outputs: the last row and column are pooled by none
        (5, 16, (6, 6), 0, 3),
        (3, 8, (9, 8), 2, 5),  # a 5×5 filter
        (1, 3, (6, 5), 3, 3),  # a pad wider than the filter's reach: dy is cropped
    ],
)
def test_stride_one_convolution_then_pooling_equals_the_layers(
    dtype, channels, filters, image, pad, size
):
    _check(dtype, 3, channels, filters, image, pad, size=size, pool=2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("image, pad, pool", [((7, 6), 1, None), ((9, 9), 1, 2), ((8, 7), 0, 3)])
def test_stride_two_convolution_equals_the_layer(dtype, image, pad, pool):
    _check(dtype, 3, 5, 16, image, pad, stride=2, pool=pool)


def test_a_pad_of_four_around_a_three_by_three_filter_equals_the_layer():
    _check(np.float64, 2, 2, 3, (5, 6), 4)


def _network(dtype, seed=0):
    """Two 3×3 stride-1 convolutions (16 filters, then 32), a pooling, an Affine: big
    enough that the products are cut into blocks."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: (rng.standard_normal(shape) * 0.2).astype(dtype)  # noqa: E731
    layers = [
        Convolution(normal(16, 3, 3, 3), normal(16), 1, 1),
        Relu(),
        Convolution(normal(32, 16, 3, 3), normal(32), 1, 1),
        Relu(),
        Pooling(2, 2, 2),
        Affine(normal(32 * 12 * 12, 10), normal(10)),
    ]
    return Sequential(layers), rng


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_steps_numbers_are_the_same_on_one_thread_and_two(dtype):
    net, rng = _network(dtype)
    x = rng.standard_normal((24, 3, 24, 24)).astype(dtype)
    t = rng.integers(0, 10, 24)
    # BLAS at two threads: the most the tuner may use
    assert_same_bits_on_any_thread_count(lambda: (net, x, t), (1, 2, 1), most=2)
