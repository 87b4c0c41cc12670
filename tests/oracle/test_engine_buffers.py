"""No kernel reads a buffer before writing it: with every new buffer filled with NaN
(integers and booleans with all bits set), a step gives the same bits as with buffers
as NumPy hands them out, for every kind of layer, whole and in halves."""

import types

import numpy as np
import pytest
from test_engine_halves import _stack

import chainrule.engine.buffers as buffers
import chainrule.engine.step as step_module
from chainrule.engine import Step
from chainrule.layers import Affine, Convolution, Pooling, Relu, Sigmoid
from chainrule.networks import DeepConvNet, MultiLayerNetExtend, Sequential, SimpleConvNet


def _garbage(array, huge):
    """NaN spreads to whatever reads it; the largest float overflows what adds it (an
    error, in the tests)."""
    kind = array.dtype.kind
    if kind == "f":
        array.fill(np.finfo(array.dtype).max if huge else np.nan)
    else:
        array.fill(True if kind == "b" else -1 if kind == "i" else np.iinfo(array.dtype).max)
    return array


def _strided(dtype):
    rng = np.random.default_rng(3)
    normal = lambda *shape: (rng.standard_normal(shape) * 0.3).astype(dtype)  # noqa: E731
    layers = [
        Convolution(normal(3, 2, 3, 3), normal(3), 2, 1),  # stride 2: dx by filter position
        Sigmoid(),
        Convolution(normal(4, 3, 2, 2), normal(4), 1, 0),
        Pooling(3, 3, 2, 1),  # its own kernel: padding, stride unlike the window
        Relu(),
        Affine(normal(4 * 2 * 2, 3), normal(3)),
    ]
    return Sequential(layers), rng.standard_normal((5, 2, 9, 9)).astype(dtype), np.arange(5) % 3


def _networks(dtype):
    rng = np.random.default_rng(0)
    images, labels = rng.random((6, 1, 28, 28)).astype(dtype), np.arange(6) % 10
    rows = rng.random((6, 784)).astype(dtype)
    yield lambda: (DeepConvNet(dtype=dtype, seed=0), images, labels)
    yield lambda: (SimpleConvNet(dtype=dtype, seed=0), images, labels)
    extend = dict(use_batchnorm=True, use_dropout=True, dtype=dtype, seed=0)
    yield lambda: (MultiLayerNetExtend(784, [20, 20], 10, **extend), rows, labels)
    yield lambda: _stack(dtype)
    yield lambda: _strided(dtype)


def _assert_same_bits(result, expected):
    assert result[0] == expected[0]
    for key, grad in expected[1].items():
        np.testing.assert_array_equal(result[1][key], grad, err_msg=key)


def _step(make, threads):
    net, x, t = make()
    loss, grads = Step(net, threads=threads).loss_and_gradient(x, t)
    return loss, {key: grad.copy() for key, grad in grads.items()}


@pytest.mark.parametrize("huge", [False, True])
@pytest.mark.parametrize("halves", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_kernel_reads_a_buffer_it_did_not_write(monkeypatch, dtype, halves, huge):
    if halves:
        monkeypatch.setattr(step_module, "_SPLIT_MULTIPLIES", 0)
    for make in _networks(dtype):
        for threads in (1, 2):
            expected = _step(make, threads)
            with monkeypatch.context() as patch:
                patch.setattr(buffers, "np", _poisoned_numpy(huge))
                _assert_same_bits(_step(make, threads), expected)


def _poisoned_numpy(huge):
    """NumPy as chainrule.engine.buffers sees it, its new arrays full of garbage."""
    fake = types.SimpleNamespace(**vars(np))
    fake.empty = lambda *a, **k: _garbage(np.empty(*a, **k), huge)
    fake.empty_like = lambda *a, **k: _garbage(np.empty_like(*a, **k), huge)
    return fake
