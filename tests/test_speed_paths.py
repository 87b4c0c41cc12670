"""The fast paths give the plain paths' numbers: workspaces, the skipped dX, dout = lr.

The training step (``MultiLayerNet.loss_and_gradient``) runs every layer with a workspace
(buffers reused from call to call), skips the first layer's input gradient and, in
``fit`` with plain SGD, backpropagates ``dout = lr``. Each of these must change the speed
only: these tests compare each with the book's plain computation.
"""

import numpy as np
import pytest

from chainrule import Graph, MultiLayerNet, TwoLayerNet
from chainrule.errors import LabelError
from chainrule.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from chainrule.optim import SGD, Momentum
from chainrule.train import _epoch_batches, evaluate, fit, iters_per_epoch


def rand(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer_type", [Relu, Sigmoid])
def test_activation_with_workspace_equals_plain(layer_type, dtype):
    rng = np.random.default_rng(0)
    x = rand(rng, 5, 7).astype(dtype)
    x[0, :4] = [-np.inf, np.inf, -0.0, 0.0]
    dout = rand(rng, 5, 7).astype(dtype)
    plain, fast, workspace = layer_type(), layer_type(), {}
    with np.errstate(invalid="ignore"):  # inf in sigmoid's backward: same in both
        expected = (plain.forward(x), plain.backward(dout))
        for _ in range(2):  # the second call reuses the buffers
            got = (fast.forward(x, workspace=workspace), fast.backward(dout, workspace=workspace))
            for a, b in zip(got, expected):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
    if layer_type is Relu:
        np.testing.assert_array_equal(fast.mask, plain.mask)
        assert fast.mask.dtype == np.bool_


def test_relu_workspace_buffers_are_reused_and_remade_for_a_new_shape():
    layer, workspace = Relu(), {}
    first = layer.forward(np.ones((3, 4)), workspace=workspace)
    again = layer.forward(np.full((3, 4), -1.0), workspace=workspace)
    assert again is first  # the same buffer, overwritten
    assert not first.any()
    other = layer.forward(np.ones((2, 4)), workspace=workspace)
    assert other.shape == (2, 4) and other is not first


@pytest.mark.parametrize("x_shape", [(4, 6), (4, 3, 2), (6,)])
def test_affine_with_workspace_equals_plain(x_shape):
    rng = np.random.default_rng(1)
    W, b, x = rand(rng, 6, 5), rand(rng, 5), rand(rng, *x_shape)
    dout = rand(rng, *((5,) if len(x_shape) == 1 else (x_shape[0], 5)))
    plain, fast, workspace = Affine(W, b), Affine(W, b), {}
    out, dx = plain.forward(x), plain.backward(dout)
    for _ in range(2):
        np.testing.assert_allclose(fast.forward(x, workspace=workspace), out, rtol=1e-14)
        np.testing.assert_allclose(fast.backward(dout, workspace=workspace), dx, rtol=1e-14)
        np.testing.assert_allclose(fast.dW, plain.dW, rtol=1e-14)
        np.testing.assert_allclose(fast.db, plain.db, rtol=1e-14)


def test_affine_skips_the_input_gradient_on_request():
    rng = np.random.default_rng(2)
    layer = Affine(rand(rng, 3, 2), rand(rng, 2))
    x, dout = rand(rng, 4, 3), rand(rng, 4, 2)
    layer.forward(x)
    assert layer.backward(dout, input_grad=False) is None
    np.testing.assert_allclose(layer.dW, x.T @ dout, rtol=1e-14)
    np.testing.assert_allclose(layer.db, dout.sum(axis=0), rtol=1e-14)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("dout", [1.0, 0.05])
def test_loss_with_workspace_equals_plain(one_hot, dout):
    rng = np.random.default_rng(3)
    x, labels = rand(rng, 7, 10) * 5, rng.integers(0, 10, 7)
    x[0] = [1e4, -1e4, *x[0, 2:]]  # huge logits stay finite in both
    t = np.eye(10)[labels] if one_hot else labels
    plain, fast, workspace = SoftmaxWithLoss(), SoftmaxWithLoss(), {}
    loss, dx = plain.forward(x, t), plain.backward(dout)
    for _ in range(2):
        assert fast.forward(x, t, workspace=workspace) == pytest.approx(loss, rel=1e-13)
        np.testing.assert_allclose(fast.y, plain.y, rtol=1e-13, atol=1e-300)
        got = fast.backward(dout, workspace=workspace)
        assert got.shape == dx.shape
        np.testing.assert_allclose(got, dx, rtol=1e-13, atol=1e-18)


def reference_gradients(net, x, t):
    """The gradients by the recorded graph: the layers' plain paths, dX of Affine1 included."""
    graph, loss = net.record(x, t)
    graph.backward(loss)
    grads = {}
    for i in range(1, len(net.sizes)):
        affine = net.layers[f"Affine{i}"]
        grads[f"W{i}"] = affine.dW + net.weight_decay_lambda * affine.W
        grads[f"b{i}"] = affine.db.copy()
    return float(loss.data) + net.weight_decay_loss(), grads


def assert_step_equals_reference(net, x, t, dout=1.0):
    """One training step's loss and gradients against the recorded graph's plain pass."""
    expected_loss, expected = reference_gradients(net, x, t)
    loss, grads = net.loss_and_gradient(x, t, dout=dout)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for key in net.params:
        np.testing.assert_allclose(grads[key], dout * expected[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_training_step_equals_the_plain_backward_pass(activation, decay):
    rng = np.random.default_rng(4)
    net = MultiLayerNet(
        12,
        [9, 7],
        4,
        activation=activation,
        weight_decay_lambda=decay,
        weight_init_std=0.5,
        dtype=np.float64,
        seed=4,
    )
    x, t = rng.random((6, 12)), rng.integers(0, 4, 6)
    for _ in range(2):
        assert_step_equals_reference(net, x, t)
    assert_step_equals_reference(net, x, t, dout=0.25)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("labels", ["integer", "one-hot"])
def test_unchecked_steps_equal_the_plain_pass_across_batch_shapes(activation, labels, monkeypatch):
    # After the first step of a batch shape, the layers run their unchecked *_into
    # methods; any shape change in between must go back through the checked methods.
    checked_calls = []

    def spy(checked):
        def forward(self, *args, **kwargs):
            checked_calls.append(self)
            return checked(self, *args, **kwargs)

        return forward

    for layer_type in (Affine, Relu, Sigmoid, SoftmaxWithLoss):
        monkeypatch.setattr(layer_type, "forward", spy(layer_type.forward))
    rng = np.random.default_rng(11)
    net = MultiLayerNet(
        12, [9, 7], 4, activation=activation, weight_decay_lambda=0.01, dtype=np.float64, seed=7
    )
    for step, shape in enumerate([(6, 12), (6, 12), (6, 3, 4), (6, 3, 4), (5, 12), (6, 12)]):
        x, t = rng.random(shape), rng.integers(0, 4, shape[0])
        if labels == "one-hot":
            t = np.eye(4)[t]
        expected_loss, expected = reference_gradients(net, x.reshape(len(x), -1), t)
        checked_calls.clear()
        loss, grads = net.loss_and_gradient(x, t, dout=0.5)
        assert loss == pytest.approx(expected_loss, rel=1e-13)
        for key in net.params:
            np.testing.assert_allclose(grads[key], 0.5 * expected[key], rtol=1e-12, atol=1e-15)
        new_shape = step in (0, 2, 4, 5)  # the first of a shape, or back from another
        assert len(checked_calls) == (6 if new_shape else 0)
        # As the checked forward leaves it: the first layer's dX would have x's shape.
        assert net.layers["Affine1"].original_x_shape == shape
    if labels == "integer":  # the labels are still checked on an unchecked step
        with pytest.raises(LabelError, match="label 4 at index 2"):
            net.loss_and_gradient(x, np.where(np.arange(6) == 2, 4, t))


def test_a_layer_replaced_after_training_steps_is_the_one_the_next_step_uses():
    rng = np.random.default_rng(12)
    net = MultiLayerNet(12, [9], 4, dtype=np.float64, seed=8)
    x, t = rng.random((6, 12)), rng.integers(0, 4, 6)
    for _ in range(2):  # the second step runs unchecked
        net.loss_and_gradient(x, t)
    net.layers["Relu1"] = Sigmoid()
    for _ in range(2):
        assert_step_equals_reference(net, x, t)


def test_gradients_are_valid_until_the_next_call_as_documented():
    rng = np.random.default_rng(5)
    net = TwoLayerNet(8, 5, 3, dtype=np.float64, seed=5)
    x1, x2, t = rng.random((4, 8)), rng.random((4, 8)), rng.integers(0, 3, 4)
    first = net.gradient(x1, t)
    kept = {key: g.copy() for key, g in first.items()}
    second = net.gradient(x2, t)
    assert all(second[key] is first[key] for key in ("W1", "b1", "W2", "b2"))
    assert not np.allclose(first["W1"], kept["W1"])  # overwritten in place
    np.testing.assert_array_equal(net.gradient(x1, t)["W1"], kept["W1"])  # the copy holds


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
    assert isinstance(graph, Graph)


def blobs(n=200, dim=6, classes=3, seed=0):
    centres = np.random.default_rng(99).standard_normal((classes, dim)) * 3
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return centres[labels] + rng.standard_normal((n, dim)), labels


@pytest.mark.parametrize("sampling", ["shuffle", "with-replacement"])
def test_fit_with_sgd_equals_the_books_loop(sampling):
    """fit folds lr into backprop (dout = lr, then update_scaled); the book's loop does not."""
    x, t = blobs()
    settings = dict(batch_size=16, iters=40, seed=2, sampling=sampling)
    net = MultiLayerNet(6, [8], 3, dtype=np.float64, seed=1)
    history = fit(net, SGD(lr=0.1), x, t, **settings)

    book = MultiLayerNet(6, [8], 3, dtype=np.float64, seed=1)
    optimizer, losses = SGD(lr=0.1), []
    per_epoch = iters_per_epoch(len(x), 16)
    for step in range(40):
        epoch, position = divmod(step, per_epoch)
        index = _epoch_batches(len(x), 16, per_epoch, 2, epoch, sampling)[position]
        loss, grads = book.loss_and_gradient(x[index], t[index])
        optimizer.update(book.params, grads)
        losses.append(float(loss))
    np.testing.assert_allclose(history.losses, losses, rtol=1e-12)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], book.params[key], rtol=1e-12, atol=1e-15)


def test_update_scaled_is_update_with_the_steps_precomputed():
    rng = np.random.default_rng(7)
    params = {"W": rng.random((3, 4)), "b": rng.random(4)}
    grads = {key: rng.random(p.shape) for key, p in params.items()}
    plain, fast = SGD(lr=0.3), SGD(lr=0.3)
    expected = {key: p.copy() for key, p in params.items()}
    plain.update(expected, grads)
    fast.update_scaled(params, {key: 0.3 * g for key, g in grads.items()})
    assert fast.t == plain.t == 1
    for key in params:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-15)


def test_fit_with_another_optimizer_takes_the_plain_update():
    x, t = blobs()
    a, b = (MultiLayerNet(6, [8], 3, dtype=np.float64, seed=1) for _ in range(2))
    fit(a, Momentum(lr=0.05), x, t, batch_size=20, iters=15)
    optimizer = Momentum(lr=0.05)
    for index in _epoch_batches(len(x), 20, 10, 0, 0, "shuffle"):
        optimizer.update(b.params, b.gradient(x[index], t[index]))
    for index in _epoch_batches(len(x), 20, 10, 0, 1, "shuffle")[:5]:
        optimizer.update(b.params, b.gradient(x[index], t[index]))
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_evaluate_of_a_wide_network_runs_in_smaller_chunks_with_the_same_result(monkeypatch):
    x, t = blobs(n=300)
    net = MultiLayerNet(6, [64], 3, dtype=np.float64, seed=3)
    whole = evaluate(net, x, t)
    monkeypatch.setattr("chainrule.train._EVAL_LAYER_BYTES", 8 * 64 * 7)  # 7 rows a chunk
    seen = []
    predict = net.predict
    monkeypatch.setattr(net, "predict", lambda chunk: seen.append(len(chunk)) or predict(chunk))
    chunked = evaluate(net, x, t)
    assert max(seen) == 7 and sum(seen) == 300
    assert chunked[1] == whole[1]
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)


@pytest.mark.parametrize("dtype", ["<i8", ">i8", "<i4", "|i1", "<u2", ">u4"])
def test_labels_out_of_range_are_caught_for_every_integer_dtype(dtype):
    """The range check reads labels as unsigned: byte order and width must not matter."""
    x = np.zeros((3, 4))
    bad_labels = [[0, 4, 1]] + ([[0, -1, 1]] if "i" in dtype else [])
    for bad in bad_labels:
        with pytest.raises(LabelError, match=r"outside 0\.\.3"):
            SoftmaxWithLoss().forward(x, np.array(bad).astype(dtype))
    good = np.array([0, 3, 2]).astype(dtype)
    assert SoftmaxWithLoss().forward(x, good) == pytest.approx(np.log(4))
