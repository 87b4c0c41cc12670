"""PyTorch as the oracle: the same float64 inputs give the same values and gradients.

Skipped where torch is not installed; CI installs it.
"""

import numpy as np
import pytest

from chainrule import MultiLayerNet
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss

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
