"""The engine's convolution and pooling kernels (chainrule.engine.conv) equal the layers,
in SimpleConvNet's step (its fused Conv → Pool in blocks) and in other poolings."""

import numpy as np
import pytest

from chainrule.engine import Step
from chainrule.engine.conv import ConvKernel
from chainrule.layers import Affine, Pooling, Relu
from chainrule.networks import SimpleConvNet

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def _data(net, n, one_hot, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *net.input_dim)).astype(net.dtype)
    t = rng.integers(0, net.output_size, n)
    if one_hot:
        t = np.eye(net.output_size, dtype=net.dtype)[t]
    return x, t


def _assert_same(net, x, t, dtype, dout=1.0):
    fast = Step(net)
    loss, grads = fast.loss_and_gradient(x, t, dout=dout)
    assert fast._train is not None  # the engine computed it, not the layers
    ref_loss, ref = net.loss_and_gradient_by_layers(x, t, dout=dout)
    tol = TOLERANCE[dtype]
    assert abs(loss - ref_loss) <= tol * abs(ref_loss)
    assert list(grads) == list(ref)
    for key in ref:
        scale = np.abs(ref[key]).max()
        assert scale > 0, key
        assert np.abs(grads[key] - ref[key]).max() <= tol * scale, key


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "input_dim, conv_param, one_hot",
    [
        ((1, 28, 28), {"filter_num": 6}, False),  # the book's shapes, fewer filters
        ((2, 11, 13), {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 2}, True),
        ((1, 10, 9), {"filter_num": 3, "filter_size": 2}, False),  # odd conv output: cropped
    ],
)
def test_fast_step_equals_the_layers(dtype, input_dim, conv_param, one_hot):
    net = SimpleConvNet(input_dim, conv_param, 20, 5, "he", dtype=dtype, seed=1)
    x, t = _data(net, 7, one_hot, seed=2)
    _assert_same(net, x, t, dtype, dout=0.3)
    _assert_same(net, x, t, dtype)  # again, with the reused buffer


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "input_dim, conv_param",
    [
        ((1, 28, 28), {"filter_num": 6}),
        ((2, 11, 13), {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 2}),
        ((1, 10, 9), {"filter_num": 3, "filter_size": 2}),
    ],
)
def test_fast_scores_equal_predict(dtype, input_dim, conv_param):
    net = SimpleConvNet(input_dim, conv_param, 20, 5, "he", dtype=dtype, seed=1)
    x, _ = _data(net, 9, False, seed=2)
    net.params["b1"][...] = np.linspace(-0.5, 0.5, len(net.params["b1"]))  # some dead maps
    expected = net.predict(x)
    scale = np.abs(expected).max()
    for chunk in (x, x[:4], x):  # buffers sized, resized, reused
        got = net.predict_fast(chunk)
        assert got.shape == (len(chunk), 5) and got.dtype == dtype
        assert np.abs(got - expected[: len(chunk)]).max() <= TOLERANCE[dtype] * scale


def test_evaluating_between_steps_leaves_the_steps_buffers_alone():
    net = SimpleConvNet((1, 12, 12), {"filter_num": 3, "filter_size": 3}, 8, 4, "he", seed=4)
    x, t = _data(net, 6, False, seed=5)
    before = net.loss_and_gradient(x, t)[1]["W1"].copy()
    net.predict_fast(_data(net, 11, False, seed=6)[0])  # another size, between two steps
    np.testing.assert_array_equal(net.loss_and_gradient(x, t)[1]["W1"], before)


def test_fast_scores_fall_back_to_the_layers_for_what_they_do_not_know():
    net = SimpleConvNet((1, 12, 12), {"filter_num": 3, "filter_size": 3}, 8, 4, "he", seed=4)
    x, _ = _data(net, 5, False, seed=3)
    net.layers["Pool1"] = Pooling(3, 3, stride=1, name="Pool1")  # W2 no longer fits
    assert net.fast_step.scores(x) is None
    with pytest.raises(Exception, match="Affine1"):  # the layers' own error: 3·8·8 ≠ 3·5·5
        net.predict_fast(x)


def test_ties_and_zero_windows_send_the_gradient_where_the_layers_do():
    # Images of a few levels make many equal values in a window (ties), and negative
    # biases many all-zero windows after ReLU.
    net = SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 1}, 6, 3, 1.0, seed=0)
    net.params["W1"][...] = 1.0
    net.params["b1"][...] = [-1.0, 0.0, -0.5]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (4, 1, 8, 8)).astype(np.float64)
    _assert_same(net, x, np.array([0, 1, 2, 1]), np.float64)


@pytest.mark.parametrize("window, image", [(3, (2, 13, 14)), (5, (1, 12, 12))])
def test_another_pooling_whose_stride_is_its_window_runs_fast_and_equal(window, image):
    # A learner's network with the book's pooling replaced: 3×3 stride 3 (13×14 images:
    # a last row and column that no window covers), or one 5×5 window per 10×10 map.
    net = SimpleConvNet(image, {"filter_num": 3, "filter_size": 3}, 8, 4, "he", seed=6)
    net.layers["Pool1"] = Pooling(window, window, stride=window, name="Pool1")
    out_h, out_w = image[1] - 2, image[2] - 2
    W2 = np.random.default_rng(7).standard_normal((3 * (out_h // window) * (out_w // window), 8))
    net.params["W2"] = W2
    net.layers["Affine1"] = Affine(W2, net.params["b2"], name="Affine1")
    x, t = _data(net, 5, False, seed=8)
    _assert_same(net, x, t, np.float64)


def test_training_uses_the_engine_and_hands_back_what_it_does_not_know(monkeypatch):
    net = SimpleConvNet((1, 12, 12), {"filter_num": 3, "filter_size": 3}, 8, 4, dtype="float32")
    x, t = _data(net, 5, False, seed=3)
    calls = []
    real = ConvKernel.forward
    monkeypatch.setattr(ConvKernel, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    loss, _ = net.loss_and_gradient(x, t)
    assert calls == [1]
    column_loss, _ = net.loss_and_gradient(x, t.reshape(-1, 1))  # a column
    assert calls == [1, 1] and column_loss == loss
    net.layers["Relu1"] = type("Leaky", (Relu,), {})()  # a class it does not know
    by_layers = net.loss_and_gradient(x, t)
    assert calls == [1, 1] and by_layers[0] == pytest.approx(loss, rel=1e-6)


def _broken(monkeypatch, where):
    if where == "fast":  # the engine's dW1 off by 0.1%
        source = ConvKernel.backward

        def wrong(self, dy, need_dx):
            dx = source(self, dy, need_dx)
            self.grads["W"] *= 1 + 1e-3
            return dx

        monkeypatch.setattr(ConvKernel, "backward", wrong)
    else:
        source = Pooling.backward
        # the layers' pooling passes back 1% too much
        monkeypatch.setattr(Pooling, "backward", lambda self, dout: source(self, dout) * 1.01)


@pytest.mark.parametrize("where", ["fast", "layers"])
def test_the_comparison_fails_when_either_side_is_broken(monkeypatch, where):
    net = SimpleConvNet((1, 12, 12), {"filter_num": 3, "filter_size": 3}, 8, 4, "he", seed=4)
    x, t = _data(net, 5, False, seed=5)
    _broken(monkeypatch, where)
    with pytest.raises(AssertionError):
        _assert_same(net, x, t, np.float64)
