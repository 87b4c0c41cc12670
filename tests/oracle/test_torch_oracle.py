"""PyTorch as the oracle: the same float64 inputs give the same values and gradients.

Skipped where torch is not installed; CI installs it.
"""

import numpy as np
import pytest

from chainrule import MultiLayerNet
from chainrule.layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Convolution,
    MulLayer,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from chainrule.primitives import Div, Dot, Exp, Log, Neg, Pow, Reciprocal, Sub, Sum

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-10


def close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=1e-14)


def leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize(
    ("x_shape", "y_shape"), [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1))]
)
@pytest.mark.parametrize(("layer_type", "op"), [(MulLayer, torch.mul), (AddLayer, torch.add)])
def test_mul_and_add(layer_type, op, x_shape, y_shape):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    layer = layer_type()
    out = layer.forward(x, y)
    dout = rng.standard_normal(out.shape)
    dx, dy = layer.backward(dout)
    tx, ty = leaf(x), leaf(y)
    tout = op(tx, ty)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)
    close(dy, ty.grad)


@pytest.mark.parametrize(("layer_type", "fn"), [(Relu, torch.relu), (Sigmoid, torch.sigmoid)])
def test_activations(layer_type, fn):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(20) * 5, [0.0, -30.0, 30.0, -700.0, 700.0]])
    dout = rng.standard_normal(x.shape)
    layer = layer_type()
    out = layer.forward(x)
    dx = layer.backward(dout)
    tx = leaf(x)
    tout = fn(tx)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)


@pytest.mark.parametrize("x_shape", [(5, 6), (1, 6), (4, 2, 3)])
def test_affine(x_shape):
    rng = np.random.default_rng(2)
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((6, 4)), rng.standard_normal(4)
    layer = Affine(W, b)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx, tW, tb = leaf(x), leaf(W), leaf(b)
    tout = tx.reshape(x_shape[0], -1) @ tW + tb
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)
    close(layer.dW, tW.grad)
    close(layer.db, tb.grad)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("dout", [1.0, 0.3])
def test_softmax_with_loss(one_hot, dout):
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((7, 5)) * 3, rng.integers(0, 5, 7)
    t = np.eye(5)[labels] if one_hot else labels
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    dx = layer.backward(dout)
    tx = leaf(x)
    target = torch.tensor(t) if one_hot else torch.tensor(labels)
    tloss = F.cross_entropy(tx, target)
    (tloss * dout).backward()
    close(loss, tloss)
    close(dx, tx.grad)


def test_softmax_with_loss_at_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    labels = np.array([1, 1])
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, labels)
    tx = leaf(x)
    tloss = F.cross_entropy(tx, torch.tensor(labels))
    tloss.backward()
    close(loss, tloss)
    close(layer.backward(), tx.grad)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_whole_multilayer_net_gradient(activation):
    rng = np.random.default_rng(4)
    decay = 0.05
    net = MultiLayerNet(
        12,
        [9, 7],
        4,
        activation=activation,
        weight_init_std=0.5,
        weight_decay_lambda=decay,
        dtype=np.float64,
        seed=4,
    )
    x, t = rng.random((6, 12)), rng.integers(0, 4, 6)
    loss, grads = net.loss(x, t), net.gradient(x, t)

    tparams = {k: leaf(v) for k, v in net.params.items()}
    act = torch.relu if activation == "relu" else torch.sigmoid
    h = torch.tensor(x)
    for i in (1, 2):
        h = act(h @ tparams[f"W{i}"] + tparams[f"b{i}"])
    logits = h @ tparams["W3"] + tparams["b3"]
    penalty = 0.5 * decay * sum((tparams[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    tloss = F.cross_entropy(logits, torch.tensor(t)) + penalty
    tloss.backward()
    close(loss, tloss)
    for key, tensor in tparams.items():
        close(grads[key], tensor.grad)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "pad"),
    [
        ((2, 3, 8, 7), (4, 3, 3, 3), 1, 0),
        ((2, 3, 8, 7), (4, 3, 3, 2), 2, 1),
        ((1, 2, 9, 9), (5, 2, 4, 4), 3, 2),
        ((3, 1, 28, 28), (6, 1, 5, 5), 1, 0),
    ],
)
def test_convolution_is_conv2d(x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(5)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    layer = Convolution(W, b, stride=stride, pad=pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx, tW, tb = leaf(x), leaf(W), leaf(b)
    tout = F.conv2d(tx, tW, tb, stride=stride, padding=pad)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)
    close(layer.dW, tW.grad)
    close(layer.db, tb.grad)


@pytest.mark.parametrize(
    ("pool", "stride", "pad"), [((2, 2), 2, 0), ((3, 3), 2, 1), ((2, 3), 1, 1), ((3, 2), 3, 0)]
)
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_is_max_pool2d(pool, stride, pad, ties):
    # With ties (small integers) both send a window's gradient to its first maximum.
    rng = np.random.default_rng(6)
    shape = (2, 3, 7, 8)
    x = rng.integers(-2, 2, shape).astype(float) if ties else rng.standard_normal(shape)
    layer = Pooling(*pool, stride=stride, pad=pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = leaf(x)
    tout = F.max_pool2d(tx, pool, stride=stride, padding=pad)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)


@pytest.mark.parametrize("shape", [(8, 5), (4, 2, 3, 3)])
def test_batch_normalization_in_training_mode_is_batch_norm(shape):
    # On images the book's layer takes each of the C·H·W values as a feature: torch's
    # batch_norm of the (N, C·H·W) rows.
    rng = np.random.default_rng(7)
    n, features = shape[0], int(np.prod(shape[1:]))
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(features), rng.standard_normal(features)
    start_mean, start_var = rng.standard_normal(features), rng.random(features) + 0.5
    eps = 1e-5
    layer = BatchNormalization(
        gamma, beta, momentum=0.9, running_mean=start_mean, running_var=start_var, eps=eps
    )
    out = layer.forward(x)
    dout = rng.standard_normal(shape)
    dx = layer.backward(dout)
    tx, tgamma, tbeta = leaf(x), leaf(gamma), leaf(beta)
    running_mean, running_var = torch.tensor(start_mean), torch.tensor(start_var)
    tout = F.batch_norm(
        tx.reshape(n, features), running_mean, running_var, tgamma, tbeta,
        training=True, momentum=0.1, eps=eps,
    ).reshape(shape)  # fmt: skip
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)
    close(layer.dgamma, tgamma.grad)
    close(layer.dbeta, tbeta.grad)
    close(layer.running_mean, running_mean)
    # torch moves towards the unbiased variance, the book's layer towards the biased one
    biased = 0.9 * start_var + (running_var.numpy() - 0.9 * start_var) * (n - 1) / n
    np.testing.assert_allclose(layer.running_var, biased, rtol=RTOL)


def test_batch_normalization_inference_uses_the_running_statistics():
    rng = np.random.default_rng(8)
    x, gamma, beta = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.random(4) + 0.5
    layer = BatchNormalization(gamma, beta, running_mean=mean, running_var=var)
    out = layer.forward(x, train_flg=False)
    tout = F.batch_norm(
        torch.tensor(x), torch.tensor(mean), torch.tensor(var), torch.tensor(gamma),
        torch.tensor(beta), training=False, eps=1e-6,
    )  # fmt: skip
    close(out, tout)


def _primitive(layer, torch_op, inputs):
    """A primitive node and its PyTorch counterpart on the same inputs and upstream gradient."""
    out = layer.forward(*inputs)
    dout = np.random.default_rng(5).standard_normal(np.shape(out))
    grads = layer.backward(dout)
    grads = grads if isinstance(grads, tuple) else (grads,)
    leaves = [leaf(x) for x in inputs]
    tout = torch_op(*leaves)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    for ours, theirs in zip(grads, leaves):
        close(ours, theirs.grad)


_R = np.random.default_rng(6)
_POSITIVE = _R.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize(
    ("make", "torch_op", "inputs"),
    [
        (Neg, torch.neg, [_R.standard_normal((3, 4))]),
        (Sub, torch.sub, [_R.standard_normal((3, 4)), _R.standard_normal(4)]),
        (Sub, torch.sub, [_R.standard_normal((2, 1, 3)), _R.standard_normal((4, 1))]),
        (Div, torch.div, [_R.standard_normal((3, 4)), _POSITIVE]),
        (Div, torch.div, [_R.standard_normal(4), _POSITIVE[:, :1]]),
        (Reciprocal, torch.reciprocal, [_POSITIVE]),
        (lambda: Pow(2), lambda x: x**2, [_R.standard_normal((3, 4))]),
        (lambda: Pow(-1.5), lambda x: x**-1.5, [_POSITIVE]),
        (Exp, torch.exp, [_R.standard_normal((3, 4))]),
        (Log, torch.log, [_POSITIVE]),
        (Sum, torch.sum, [_R.standard_normal((3, 4))]),
        (lambda: Sum(axis=1), lambda x: x.sum(dim=1), [_R.standard_normal((3, 4))]),
        (lambda: Sum(axis=0, keepdims=True), lambda x: x.sum(0, True), [_POSITIVE]),
        (Dot, torch.matmul, [_R.standard_normal((3, 4)), _R.standard_normal((4, 2))]),
        (Dot, torch.matmul, [_R.standard_normal(4), _R.standard_normal((4, 2))]),
        (Dot, torch.matmul, [_R.standard_normal((3, 4)), _R.standard_normal(4)]),
        (Dot, torch.matmul, [_R.standard_normal(4), _R.standard_normal(4)]),
        (Dot, torch.matmul, [_R.standard_normal((2, 3, 4)), _R.standard_normal((4, 2))]),
    ],
    ids=lambda p: getattr(p, "__name__", None) if callable(p) else None,
)
def test_primitive_nodes(make, torch_op, inputs):
    _primitive(make(), torch_op, inputs)


def _torch_deep_convnet(net, x, masks):
    """DeepConvNet's forward in torch from its own parameters: ``masks`` are the two
    dropout masks (the book's dropout, not torch's inverted one), or None for inference."""
    tparams = {k: leaf(v) for k, v in net.params.items()}
    convs = [layer for layer in net.layers.values() if isinstance(layer, Convolution)]
    h = torch.tensor(x)
    for i, conv in enumerate(convs, start=1):
        h = F.relu(F.conv2d(h, tparams[f"W{i}"], tparams[f"b{i}"], conv.stride, conv.pad))
        if i % 2 == 0:
            h = F.max_pool2d(h, 2, 2)
    h = F.relu(h.flatten(1) @ tparams["W7"] + tparams["b7"])
    h = h * (0.5 if masks is None else torch.tensor(masks[0]))
    logits = h @ tparams["W8"] + tparams["b8"]
    return logits * (0.5 if masks is None else torch.tensor(masks[1])), tparams


@pytest.mark.parametrize("engine", [True, False])
def test_deep_convnet_loss_and_gradients_are_torchs(engine):
    """The same weights and dropout masks give torch's loss and gradients, through the
    engine and through the layers; inference gives torch's scores (dropout times 0.5)."""
    from chainrule.networks import DeepConvNet

    params = {f"conv_param_{i}": {"filter_num": n} for i, n in enumerate((3, 3, 4, 4, 5, 6), 1)}
    net = DeepConvNet((2, 12, 10), **params, hidden_size=7, output_size=4, seed=3)
    rng = np.random.default_rng(6)
    for key, param in net.params.items():  # biases off zero: no output sits on ReLU's kink
        if key[0] == "b":
            param[...] = rng.uniform(-0.1, 0.1, param.shape)
    x, t = rng.standard_normal((5, 2, 12, 10)), rng.integers(0, 4, 5)
    generator = net.layers["Dropout1"].rng
    drawn = np.random.default_rng()
    drawn.bit_generator.state = generator.bit_generator.state
    step = net.loss_and_gradient if engine else net.loss_and_gradient_by_layers
    loss, grads = step(x, t)
    masks = drawn.random((5, 7)) >= 0.5, drawn.random((5, 4)) >= 0.5  # the layers' draws, in order
    logits, tparams = _torch_deep_convnet(net, x, masks)
    tloss = F.cross_entropy(logits, torch.tensor(t))
    tloss.backward()
    close(loss, tloss)
    assert grads.keys() == tparams.keys()
    for key, tensor in tparams.items():
        close(grads[key], tensor.grad)
    scores = net.predict_fast(x) if engine else net.predict(x)
    close(scores, _torch_deep_convnet(net, x, None)[0])
