"""A batch the engine splits in halves (each through kernels of its own, side by side on
two workers) gives the layers' numbers: the loss of the whole batch, the gradients
summed over the halves, the dropout masks the layers draw; the same bits on any number
of workers; and only where the samples never meet (no batch normalisation)."""

import numpy as np
import pytest
from engine_helpers import assert_same_bits_on_any_thread_count, assert_same_step
from hypothesis import given, settings
from test_engine_random import networks

import chainrule.engine.step as step_module
from chainrule.engine import Step
from chainrule.engine.dense import DropoutKernel
from chainrule.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu
from chainrule.networks import DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet


def _stack(dtype, seed=0, norm=False):
    """Two convolutions with pooling and dropout, as DeepConvNet's stages."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: (rng.standard_normal(shape) * 0.3).astype(dtype)  # noqa: E731
    layers = [
        Convolution(normal(4, 2, 3, 3), normal(4), 1, 1),
        Relu(),
        Pooling(2, 2, 2),
        Convolution(normal(6, 4, 3, 3), normal(6), 1, 1),
        Relu(),
        Dropout(0.5, seed=rng),
        Affine(normal(6 * 4 * 4, 5), normal(5)),
        Dropout(0.3, seed=rng),
    ]
    if norm:
        layers.insert(1, BatchNormalization(np.ones(4 * 8 * 8, dtype), np.zeros(4 * 8 * 8, dtype)))
    x = rng.standard_normal((9, 2, 8, 8)).astype(dtype)  # halves of 4 and 5
    return Sequential(layers), x, rng.integers(0, 5, 9)


def _parts(net, x, t):
    step = Step(net)
    step.loss_and_gradient(x, t)
    return len(step._train.parts)


@pytest.fixture
def always_split(monkeypatch):
    monkeypatch.setattr(step_module, "_SPLIT_MULTIPLIES", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_halves_give_the_layers_numbers(always_split, dtype):
    net, x, t = _stack(dtype)
    assert _parts(net, x, t) == 2
    assert_same_step(net, x, t)
    assert_same_step(net, x, t, dout=0.1)  # as for SGD, the learning rate riding on dout


@settings(max_examples=60, deadline=None)
@given(networks())
def test_halves_of_random_stacks_give_the_layers_numbers(case):
    net, x, t = case
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step_module, "_SPLIT_MULTIPLIES", 0)
        assert_same_step(net, x, t)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_halves_give_the_same_bits_on_any_number_of_workers(always_split, dtype):
    assert_same_bits_on_any_thread_count(lambda: _stack(dtype), (1, 2, 4, 3, 1), most=4)


def test_only_batches_whose_samples_never_meet_are_split(always_split):
    net, x, t = _stack(np.float64, norm=True)
    assert _parts(net, x, t) == 1  # batch normalisation: the statistics of the batch
    net, x, t = _stack(np.float64)
    assert _parts(net, x[:1], t[:1]) == 1  # one sample has no halves


def test_large_convolutions_are_split_and_the_rest_not():
    """DeepConvNet's convolutions on 100 images have about 430 million multiply-adds a
    half; SimpleConvNet's about 22 million, where two threads share its chunks better. A
    network of Affine layers is not split, however large: its products are shared in
    blocks (784-1024-1024-10 on 256 samples: 240 million a half)."""
    rng = np.random.default_rng(0)
    x, t = rng.random((100, 1, 28, 28)), rng.integers(0, 10, 100)
    assert _parts(DeepConvNet(seed=0), x, t) == 2
    assert _parts(SimpleConvNet(seed=0), x, t) == 1
    rows, labels = rng.random((256, 784)), rng.integers(0, 10, 256)
    assert _parts(MultiLayerNet(784, [1024, 1024], 10, seed=0), rows, labels) == 1


@pytest.mark.parametrize("broken", ["dropout draws", "loss share"])
def test_a_broken_split_is_caught(always_split, monkeypatch, broken):
    if broken == "dropout draws":  # each half drawing its own mask
        monkeypatch.setattr(Step, "_draw_dropout", lambda self, plan, x: None)
        monkeypatch.setattr(DropoutKernel, "draws", None)
    else:  # each half's gradient as if it were the whole batch
        run = Step._run_part

        def whole(self, plan, part, x, labels, dout, *rest):
            return run(self, plan, part, x, labels, dout * len(plan.parts), *rest)

        monkeypatch.setattr(Step, "_run_part", whole)
    net, x, t = _stack(np.float64)
    with pytest.raises(AssertionError):
        assert_same_step(net, x, t)


def test_a_split_sgd_step_that_overflows_changes_nothing(always_split):
    """With plain SGD the update rides on backprop; a loss that is not finite in either
    half is the whole batch's, and no parameter moves."""
    net, x, t = _stack(np.float64)
    step = Step(net)
    params = {key: value.copy() for key, value in net.params.items()}
    loss = step.sgd_step(x, t, 0.1)
    assert np.isfinite(loss) and len(step._train.parts) == 2
    assert any(not np.array_equal(net.params[k], params[k]) for k in params)
    before = {key: value.copy() for key, value in net.params.items()}
    x = x.copy()
    x[-1] = np.inf  # in the second half only: its scores are not numbers
    loss = step.sgd_step(x, t, 0.1)
    assert not np.isfinite(loss)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
