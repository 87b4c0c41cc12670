"""The engine equals the layers for random stacks of every layer type: architectures,
strides, paddings, pooling windows, batch norm and dropout, dtypes and label kinds drawn
by hypothesis; and its inference forward equals ``predict``."""

import math

import numpy as np
import pytest
from engine_helpers import TOLERANCE, assert_same_step
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.engine.conv import ConvKernel
from chainrule.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)
from chainrule.networks import Sequential

ACTIVATION = st.sampled_from([Relu, Sigmoid, None])


@st.composite
def networks(draw):
    """A Sequential of random layers that fit together, and a batch for it."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**20)))
    normal = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    batch = draw(st.integers(1, 4))
    layers = []
    shape = input_shape = (draw(st.integers(4, 9)),)
    if draw(st.booleans()):  # images, and a few convolution stages
        c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 9)), draw(st.integers(3, 9))
        input_shape = (c, h, w)
        for _ in range(draw(st.integers(1, 3))):
            fn, f = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 2))
            oh, ow = (h + 2 * pad - f) // stride + 1, (w + 2 * pad - f) // stride + 1
            if min(oh, ow) < 1:
                break
            layers.append(Convolution(normal(fn, c, f, f) * 0.5, normal(fn) * 0.1, stride, pad))
            c, h, w = fn, oh, ow
            if draw(st.booleans()):
                layers.append(
                    BatchNormalization(1 + normal(c * h * w) * 0.1, normal(c * h * w) * 0.1)
                )
            activation = draw(ACTIVATION)
            relu_first = activation is Relu and draw(st.booleans())
            if relu_first:  # Relu → Pool: the engine moves the ReLU after the pooling
                layers.append(Relu())
            if draw(st.booleans()):
                size = draw(st.integers(1, 3))
                stride = draw(st.sampled_from([size, 1, 2]))
                pad = draw(st.integers(0, size // 2))
                ph, pw = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
                if min(ph, pw) >= 1:
                    layers.append(Pooling(size, size, stride, pad))
                    h, w = ph, pw
            if activation is not None and not relu_first:
                layers.append(activation())
            if draw(st.booleans()):
                layers.append(Dropout(draw(st.sampled_from([0.2, 0.5])), seed=rng))
        shape = (c, h, w)
    width = math.prod(shape)
    for _ in range(draw(st.integers(0, 2))):
        hidden = draw(st.integers(2, 7))
        layers.append(Affine(normal(width, hidden) * 0.5, normal(hidden) * 0.1))
        width = hidden
        if draw(st.booleans()):
            layers.append(BatchNormalization(1 + normal(width) * 0.1, normal(width) * 0.1))
        if (activation := draw(ACTIVATION)) is not None:
            layers.append(activation())
        if draw(st.booleans()):
            layers.append(Dropout(0.3, seed=rng))
    classes = draw(st.integers(2, 5))
    layers.append(Affine(normal(width, classes) * 0.5, normal(classes) * 0.1))
    if draw(st.booleans()):
        layers.append(Dropout(0.5, seed=rng))  # as DeepConvNet ends
    if any(isinstance(layer, BatchNormalization) for layer in layers):
        batch += 3  # over 1 or 2 samples the gradient through it is 0, in rounding noise
    x = rng.standard_normal((batch, *input_shape)).astype(dtype)
    labels = rng.integers(0, classes, batch)
    t = np.eye(classes)[labels] if draw(st.booleans()) else labels
    return Sequential(layers), x, t


@settings(max_examples=120, deadline=None)
@given(networks(), st.sampled_from([1.0, 0.1]))
def test_the_engine_equals_the_layers_for_random_stacks(case, dout):
    net, x, t = case
    assert_same_step(net, x, t, dout)
    assert_same_step(net, x, t, dout)  # again, in the buffers of the first step


@settings(max_examples=60, deadline=None)
@given(networks())
def test_the_engines_forward_is_predict(case):
    net, x, _ = case
    net.loss_and_gradient(x, _)  # running statistics that are not the initial ones
    expected = net.predict(x)
    got = net.predict_fast(x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= TOLERANCE[np.dtype(net.dtype)] * scale


@pytest.mark.parametrize("where", ["engine", "layers"])
def test_random_stacks_catch_a_broken_side(monkeypatch, where):
    """One fixed stack with every kind of layer: breaking either side is caught."""
    rng = np.random.default_rng(0)
    layers = [
        Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3) * 0.1, 1, 1),
        BatchNormalization(np.ones(3 * 6 * 6), np.zeros(3 * 6 * 6)),
        Relu(),
        Pooling(2, 2, 2),
        Affine(rng.standard_normal((27, 4)), np.zeros(4)),
        Sigmoid(),
        Dropout(0.3, seed=1),
        Affine(rng.standard_normal((4, 3)), np.zeros(3)),
    ]
    x, t = rng.standard_normal((4, 2, 6, 6)), np.array([0, 1, 2, 1])
    if where == "engine":
        backward = ConvKernel.backward
        monkeypatch.setattr(
            ConvKernel, "backward", lambda self, dy, need: backward(self, dy * 1.001, need)
        )
    else:
        backward = Pooling.backward
        monkeypatch.setattr(Pooling, "backward", lambda self, dout: backward(self, dout) * 1.001)
    with pytest.raises(AssertionError):
        assert_same_step(Sequential(layers), x, t)
