"""The engine's step (chainrule.engine) computes what walking the layers computes, for
the fully connected networks.

Two independent implementations of one step: ``loss_and_gradient_by_layers`` walks the
book's layers; ``loss_and_gradient`` (and fit's SGD step) runs the engine's
:class:`~chainrule.engine.Step`, with its own arithmetic in reused buffers. Agreement of
the two, over every kind of network and batch they handle, is the check on both; each
sabotage test breaks one and sees it caught.
"""

import copy

import numpy as np
import pytest

from chainrule import MultiLayerNet, TwoLayerNet
from chainrule.engine.dense import AffineKernel
from chainrule.errors import LabelError, ShapeError
from chainrule.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from chainrule.optim import SGD, Momentum
from chainrule.train import epoch_batches, evaluate, fit, iters_per_epoch

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def assert_fast_equals_layers(net, x, t, *, dout=1.0):
    rtol = TOLERANCE[net.dtype.type]
    loss_ref, grads_ref = net.loss_and_gradient_by_layers(x, t, dout=dout)
    loss, grads = net.loss_and_gradient(x, t, dout=dout)
    assert float(loss) == pytest.approx(float(loss_ref), rel=rtol)
    assert grads.keys() == grads_ref.keys()
    for key in grads_ref:
        assert grads[key].dtype == net.dtype
        scale = np.abs(grads_ref[key]).max()
        np.testing.assert_allclose(grads[key], grads_ref[key], rtol=rtol, atol=rtol * scale)


def batch(rng, shape, classes, one_hot):
    x = rng.standard_normal(shape)
    labels = rng.integers(0, classes, shape[0])
    return x, (np.eye(classes)[labels] if one_hot else labels)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize("one_hot", [False, True])
def test_fast_step_equals_the_layers(dtype, activation, decay, one_hot):
    rng = np.random.default_rng(0)
    net = MultiLayerNet(12, [9, 7], 5, activation, weight_decay_lambda=decay, dtype=dtype, seed=1)
    for size in (6, 1, 7, 6):  # odd sizes, a batch of one, and back to a shape seen before
        x, t = batch(rng, (size, 12), 5, one_hot)
        assert_fast_equals_layers(net, x, t)
        assert_fast_equals_layers(net, x, t, dout=0.05)


@pytest.mark.parametrize("shape", [(5, 3, 4), (5, 1, 3, 4)])
def test_images_are_flattened_as_the_layers_flatten_them(shape):
    rng = np.random.default_rng(1)
    net = MultiLayerNet(12, [6], 3, dtype=np.float64, seed=2)
    x, t = batch(rng, shape, 3, one_hot=False)
    assert_fast_equals_layers(net, x, t)


def test_the_step_for_a_network_without_hidden_layers():
    rng = np.random.default_rng(2)
    net = MultiLayerNet(4, [], 3, dtype=np.float64, seed=3)
    x, t = batch(rng, (5, 4), 3, one_hot=False)
    assert_fast_equals_layers(net, x, t)


def test_a_layer_replaced_in_net_layers_is_used_from_the_next_step():
    rng = np.random.default_rng(3)
    net = MultiLayerNet(8, [6], 3, dtype=np.float64, seed=4)
    x, t = batch(rng, (5, 8), 3, one_hot=False)
    assert_fast_equals_layers(net, x, t)
    net.layers["Relu1"] = Sigmoid()  # the fast step knows sigmoid: it computes it
    assert_fast_equals_layers(net, x, t)
    W, b = net.params["W2"], net.params["b2"]
    net.layers["Affine2"] = Affine(W * 2, b + 1, name="Affine2")  # new arrays: read them
    assert_fast_equals_layers(net, x, t)
    net.layers["Affine1"].W = net.layers["Affine1"].W * 3  # a new W in the same layer
    assert_fast_equals_layers(net, x, t)


def test_a_layer_the_fast_step_does_not_know_hands_the_step_to_the_layers():
    class LeakyRelu(Relu):  # a learner's own node: only the layers can run it
        def forward(self, x):
            self.leak = np.where(np.asarray(x) <= 0, 0.1, 1.0)
            self.mask = np.zeros(np.shape(x), bool)
            return x * self.leak

        def backward(self, dout):
            return dout * self.leak

    rng = np.random.default_rng(4)
    net = MultiLayerNet(8, [6], 3, dtype=np.float64, seed=5)
    net.layers["Relu1"] = LeakyRelu()
    x, t = batch(rng, (5, 8), 3, one_hot=False)
    assert_fast_equals_layers(net, x, t)
    loss = net.fast_step.sgd_step(x, t, 0.1)
    assert np.isfinite(loss)


def test_a_single_sample_is_handed_to_the_layers():
    rng = np.random.default_rng(5)
    net = TwoLayerNet(8, 5, 3, dtype=np.float64, seed=6)
    assert_fast_equals_layers(net, rng.standard_normal(8), np.int64(2))


@pytest.mark.parametrize("target", ["fast", "layers"])
def test_a_broken_step_is_caught(target, monkeypatch):
    """Sabotage each implementation in turn: the comparison must notice."""
    rng = np.random.default_rng(6)
    net = MultiLayerNet(8, [6], 3, dtype=np.float64, seed=7)
    x, t = batch(rng, (5, 8), 3, one_hot=False)
    if target == "fast":
        backward = AffineKernel.backward

        def off_by_a_thousandth(self, dy, need_dx):
            dx = backward(self, dy, need_dx)
            self.grads["b"] *= 1.001  # the bias gradients, slightly wrong
            return dx

        monkeypatch.setattr(AffineKernel, "backward", off_by_a_thousandth)
    else:
        monkeypatch.setattr(Relu, "backward", lambda self, dout: dout * 1.0)  # no mask
    with pytest.raises(AssertionError):
        assert_fast_equals_layers(net, x, t)


def test_bad_input_gets_the_layers_errors():
    net = TwoLayerNet(8, 5, 3, dtype=np.float64, seed=8)
    with pytest.raises(ShapeError, match=r"Affine1: input of shape \(4, 7\)"):
        net.gradient(np.zeros((4, 7)), np.zeros(4, np.int64))
    with pytest.raises(ShapeError, match="labels of shape"):
        net.gradient(np.zeros((4, 8)), np.zeros(5, np.int64))
    net.gradient(np.zeros((4, 8)), np.zeros(4, np.int64))  # a checked shape ...
    with pytest.raises(LabelError, match="label 3 at index 1"):  # ... still checks labels
        net.gradient(np.zeros((4, 8)), np.array([0, 3, 1, 2]))


@pytest.mark.parametrize("method", ["gradient", "loss_and_gradient"])
def test_gradients_stay_valid_after_the_next_call(method):
    rng = np.random.default_rng(5)
    net = MultiLayerNet(8, [5, 4], 3, dtype=np.float64, seed=5)
    x1, x2, t = rng.random((4, 8)), rng.random((4, 8)), rng.integers(0, 3, 4)

    def grads(x):
        result = getattr(net, method)(x, t)
        return result if method == "gradient" else result[1]

    first = grads(x1)
    kept = {key: g.copy() for key, g in first.items()}
    second = grads(x2)
    assert all(second[key] is not first[key] for key in first)
    for key in first:  # the book's meaning: a later call changes nothing a user holds
        np.testing.assert_array_equal(first[key], kept[key])
    assert not np.allclose(second["W1"], kept["W1"])


def test_predict_loss_and_record_results_survive_a_training_step():
    rng = np.random.default_rng(6)
    net = TwoLayerNet(8, 5, 3, dtype=np.float64, seed=6)
    x, t = rng.random((4, 8)), rng.integers(0, 3, 4)
    scores = net.predict(x)
    graph, loss = net.record(x, t)
    graph.backward(loss)
    snapshot = {v.name: (np.copy(v.data), np.copy(v.grad)) for v in graph.values}
    scores_before = scores.copy()
    net.gradient(rng.random((4, 8)), t)
    net.gradient(rng.random((4, 8)), t)
    np.testing.assert_array_equal(scores, scores_before)
    for value in graph.values:
        data, grad = snapshot[value.name]
        np.testing.assert_array_equal(value.data, data)
        np.testing.assert_array_equal(value.grad, grad)


def blobs(n=200, dim=6, classes=3, seed=0):
    centres = np.random.default_rng(99).standard_normal((classes, dim)) * 3
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return centres[labels] + rng.standard_normal((n, dim)), labels


@pytest.mark.parametrize("sampling", ["shuffle", "with-replacement"])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_fit_with_sgd_equals_the_books_loop_over_the_layers(sampling, decay):
    """fit's one-pass SGD step against the book's loop: layers, then SGD.update."""
    x, t = blobs()
    settings = dict(batch_size=16, iters=40, seed=2, sampling=sampling)
    net = MultiLayerNet(6, [8], 3, weight_decay_lambda=decay, dtype=np.float64, seed=1)
    optimizer = SGD(lr=0.1)
    history = fit(net, optimizer, x, t, **settings)
    assert optimizer.t == 40

    book = MultiLayerNet(6, [8], 3, weight_decay_lambda=decay, dtype=np.float64, seed=1)
    book_optimizer, losses = SGD(lr=0.1), []
    per_epoch = iters_per_epoch(len(x), 16)
    for step in range(40):
        epoch, position = divmod(step, per_epoch)
        index = epoch_batches(len(x), 16, per_epoch, 2, epoch, sampling)[position]
        loss, grads = book.loss_and_gradient_by_layers(x[index], t[index])
        book_optimizer.update(book.params, grads)
        losses.append(float(loss))
    np.testing.assert_allclose(history.losses, losses, rtol=1e-12)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], book.params[key], rtol=1e-12, atol=1e-15)


def test_fit_with_another_optimizer_takes_the_plain_update():
    x, t = blobs()
    a, b = (MultiLayerNet(6, [8], 3, dtype=np.float64, seed=1) for _ in range(2))
    fit(a, Momentum(lr=0.05), x, t, batch_size=20, iters=15)
    optimizer = Momentum(lr=0.05)
    for index in epoch_batches(len(x), 20, 10, 0, 0, "shuffle"):
        optimizer.update(b.params, b.loss_and_gradient_by_layers(x[index], t[index])[1])
    for index in epoch_batches(len(x), 20, 10, 0, 1, "shuffle")[:5]:
        optimizer.update(b.params, b.loss_and_gradient_by_layers(x[index], t[index])[1])
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-12, atol=1e-15)


def test_a_non_finite_loss_updates_nothing():
    net = TwoLayerNet(4, 3, 2, dtype=np.float64, seed=9)
    before = {key: p.copy() for key, p in net.params.items()}
    x = np.full((2, 4), np.inf)
    with np.errstate(invalid="ignore"):
        assert not np.isfinite(net.fast_step.sgd_step(x, np.array([0, 1]), 0.1))
    for key, p in net.params.items():
        np.testing.assert_array_equal(p, before[key])


def test_evaluate_of_a_wide_network_runs_in_smaller_chunks_with_the_same_result(monkeypatch):
    x, t = blobs(n=300)
    net = MultiLayerNet(6, [64], 3, dtype=np.float64, seed=3)
    whole = evaluate(net, x, t)
    monkeypatch.setattr("chainrule.train._EVAL_LAYER_BYTES", 8 * 64 * 7)  # 7 rows a chunk
    seen = []
    predict = net.predict_fast  # what evaluation runs: the engine's forward
    monkeypatch.setattr(net, "predict_fast", lambda x: seen.append(len(x)) or predict(x))
    chunked = evaluate(net, x, t)
    assert max(seen) == 7 and sum(seen) == 300
    assert chunked[1] == whole[1]
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)


@pytest.mark.parametrize("dtype", ["<i8", ">i8", "<i4", "|i1", "<u2", ">u4"])
def test_labels_out_of_range_are_caught_for_every_integer_dtype(dtype):
    """The range check reads labels as unsigned: byte order and width must not matter."""
    x = np.zeros((3, 4))
    net = MultiLayerNet(4, [], 4, dtype=np.float64, seed=0)
    bad_labels = [[0, 4, 1]] + ([[0, -1, 1]] if "i" in dtype else [])
    for bad in bad_labels:
        with pytest.raises(LabelError, match=r"outside 0\.\.3"):
            SoftmaxWithLoss().forward(x, np.array(bad).astype(dtype))
        net.gradient(x, np.array([0, 1, 2]).astype(dtype))  # a checked batch shape
        with pytest.raises(LabelError, match=r"outside 0\.\.3"):
            net.gradient(x, np.array(bad).astype(dtype))
    good = np.array([0, 3, 2]).astype(dtype)
    assert SoftmaxWithLoss().forward(x, good) == pytest.approx(np.log(4))
    assert_fast_equals_layers(net, np.ones((3, 4)), good)


def test_a_network_that_has_trained_can_be_deep_copied():
    net = TwoLayerNet(4, 3, 2, dtype=np.float64, seed=10)
    x, t = np.ones((2, 4)), np.array([0, 1])
    net.gradient(x, t)
    clone = copy.deepcopy(net)
    assert clone.fast_step is not net.fast_step
    assert_fast_equals_layers(clone, x, t)
    clone.params["W1"] += 1.0  # the copy's own arrays
    assert not np.array_equal(clone.params["W1"], net.params["W1"])


def test_the_relu_kernel_gives_0_where_the_layer_does_for_an_infinite_gradient():
    from chainrule.engine.dense import ReluKernel

    x = np.array([[-1.0, 0.0, 2.0, np.nan]])
    dy = np.array([[np.inf, -np.inf, np.inf, 1.0]])
    layer = Relu()
    layer.forward(x)
    kernel = ReluKernel(Relu())
    kernel.forward(x.copy(), True)
    np.testing.assert_array_equal(kernel.backward(dy.copy(), True), layer.backward(dy))
