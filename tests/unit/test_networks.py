"""TwoLayerNet and MultiLayerNet: the book's API, dtypes, seeds, gradients, errors; and
the protocol every network shares: one base's methods, config and parameters' files."""

import numpy as np
import pytest

from chainrule import MultiLayerNet, TwoLayerNet
from chainrule.errors import DTypeError, ShapeError
from chainrule.gradcheck import relative_error
from chainrule.layers import Affine, Relu
from chainrule.networks import (
    DeepConvNet,
    MultiLayerNetExtend,
    Sequential,
    SimpleConvNet,
    network_from_config,
)


def batch(rng, n=4, d=12, c=3):
    return rng.random((n, d)), rng.integers(0, c, n)


def test_two_layer_net_has_the_books_parameters():
    net = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
    assert {k: v.shape for k, v in net.params.items()} == {
        "W1": (784, 50),
        "b1": (50,),
        "W2": (50, 10),
        "b2": (10,),
    }
    assert net.params["W1"].dtype == np.float64  # the book computes in float64
    # the book's init: 0.01 × standard normal, so the sample std is close to 0.01
    assert net.params["W1"].std() == pytest.approx(0.01, rel=0.05)
    assert not net.params["b1"].any()
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]


def test_params_are_the_arrays_the_layers_use():
    net = TwoLayerNet(4, 3, 2, seed=0)
    x, t = batch(np.random.default_rng(0), d=4, c=2)
    before = net.loss(x, t)
    net.params["W1"] -= 0.5  # an optimiser's in-place update must reach the layers
    assert net.loss(x, t) != before


def test_same_seed_same_network_and_float64_on_request():
    a, b = MultiLayerNet(5, [4, 3], 2, seed=7), MultiLayerNet(5, [4, 3], 2, seed=7)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    c = MultiLayerNet(5, [4, 3], 2, seed=8)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    net = MultiLayerNet(5, [4], 2, dtype=np.float64)
    x = np.random.default_rng(0).random((3, 5)).astype(np.float32)
    assert net.predict(x).dtype == np.float64


def test_float32_network_computes_in_float32():
    net = TwoLayerNet(6, 4, 3, dtype=np.float32, seed=0)
    x, t = batch(np.random.default_rng(1), d=6)
    assert net.predict(x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.gradient(x, t).values())


@pytest.mark.parametrize("init", ["relu", "he", "sigmoid", "xavier", 0.05])
def test_weight_init_std_by_name_or_number(init):
    net = MultiLayerNet(400, [300], 10, weight_init_std=init, seed=0)
    expected = {
        "relu": np.sqrt(2 / 400),
        "he": np.sqrt(2 / 400),
        "sigmoid": np.sqrt(1 / 400),
        "xavier": np.sqrt(1 / 400),
    }.get(init, init)
    assert net.params["W1"].std() == pytest.approx(expected, rel=0.02)
    # named initialisers scale by each layer's own fan-in: 300 for W2
    w2_expected = expected * np.sqrt(400 / 300) if isinstance(init, str) else init
    assert net.params["W2"].std() == pytest.approx(w2_expected, rel=0.05)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_backprop_matches_numerical_gradient(activation, decay):
    rng = np.random.default_rng(3)
    net = MultiLayerNet(
        6,
        [5, 4],
        3,
        activation=activation,
        weight_decay_lambda=decay,
        weight_init_std=0.5,
        dtype=np.float64,
        seed=3,
    )
    x, t = batch(rng, d=6)
    backprop, numerical = net.gradient(x, t), net.numerical_gradient(x, t)
    for key in net.params:
        assert relative_error(backprop[key], numerical[key])[1] < 1e-7, key


def test_weight_decay_adds_half_lambda_sum_of_squares():
    net = MultiLayerNet(3, [2], 2, weight_decay_lambda=0.3, dtype=np.float64, seed=0)
    plain = MultiLayerNet(3, [2], 2, dtype=np.float64, seed=0)
    x, t = batch(np.random.default_rng(0), d=3, c=2)
    penalty = 0.5 * 0.3 * sum((net.params[k] ** 2).sum() for k in ("W1", "W2"))
    assert net.loss(x, t) == pytest.approx(plain.loss(x, t) + penalty, rel=1e-14)


def test_accuracy_with_integer_and_one_hot_labels():
    net = TwoLayerNet(4, 3, 3, seed=0)
    x = np.random.default_rng(0).random((20, 4))
    predicted = net.predict(x).argmax(axis=1)
    labels = predicted.copy()
    labels[:5] = (labels[:5] + 1) % 3  # exactly 5 of 20 wrong
    assert net.accuracy(x, labels) == 0.75
    assert net.accuracy(x, np.eye(3)[labels]) == 0.75


@pytest.mark.parametrize(
    "make",
    [
        lambda: TwoLayerNet(4, 3, 2),
        lambda: MultiLayerNet(4, [3], 2),
        lambda: MultiLayerNetExtend(4, [3], 2, use_batchnorm=True),
        lambda: SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3}, 4, 2),
        lambda: DeepConvNet((1, 8, 8)),
    ],
)
def test_every_network_is_float64_by_default_with_the_books_names(make):
    net = make()
    assert net.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.params.values())
    assert net.lastLayer is net.last_layer  # chapter 5's name
    with pytest.raises(DTypeError, match=r"^(Affine1|Conv1): input must hold real numbers"):
        net.predict("hello")  # one line naming the layer, not NumPy's ValueError


def test_wrong_input_width_names_the_layer():
    net = TwoLayerNet(784, 50, 10)
    with pytest.raises(ShapeError, match=r"Affine1.*\(2, 100\).*\(784, 50\)"):
        net.predict(np.zeros((2, 100)))


def test_image_shaped_input_is_flattened():
    net = TwoLayerNet(784, 5, 10, seed=0)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    np.testing.assert_array_equal(net.predict(x), net.predict(x.reshape(2, 784)))


def test_record_builds_one_node_per_layer_and_matches_gradient():
    net = MultiLayerNet(5, [4], 3, dtype=np.float64, seed=1)
    x, t = batch(np.random.default_rng(1), d=5)
    grads = {k: v.copy() for k, v in net.gradient(x, t).items()}
    for name in ("Affine1", "Affine2"):  # only the graph's backward may set them again
        net.layers[name].dW = net.layers[name].db = None
    graph, loss = net.record(x, t)
    graph.backward(loss)
    assert [n.name for n in graph] == ["Affine1", "Relu1", "Affine2", "SoftmaxWithLoss"]
    for i in (1, 2):
        affine = net.layers[f"Affine{i}"]
        np.testing.assert_allclose(affine.dW, grads[f"W{i}"], rtol=1e-14)
        np.testing.assert_allclose(affine.db, grads[f"b{i}"], rtol=1e-14)
    assert loss.data == pytest.approx(net.loss(x, t))


def test_config_round_trip_and_load_params():
    net = MultiLayerNet(5, [4, 3], 2, activation="sigmoid", weight_decay_lambda=0.01, seed=2)
    clone = MultiLayerNet.from_config(net.config())
    assert clone.sizes == net.sizes and clone.activation == "sigmoid"
    clone.load_params(net.params)
    x = np.random.default_rng(0).random((3, 5))
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))
    with pytest.raises(ShapeError, match="W1: expected shape"):
        clone.load_params({**net.params, "W1": np.zeros((4, 4))})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(activation="tanh"),
        dict(dtype=np.int32),
        dict(weight_init_std="bogus"),
        dict(weight_init_std=-1.0),
        dict(weight_decay_lambda=-0.1),
        dict(hidden_size_list=[0]),
    ],
)
def test_bad_constructor_arguments(kwargs):
    args = dict(input_size=3, hidden_size_list=[2], output_size=2) | kwargs
    with pytest.raises(ValueError):
        MultiLayerNet(**args)


def test_labels_as_a_column_give_the_same_loss_gradient_and_accuracy():
    from chainrule.train import evaluate

    rng = np.random.default_rng(12)
    net = MultiLayerNet(6, [5], 3, dtype=np.float64, seed=0)
    x, t = batch(rng, d=6)
    loss, grads = net.loss_and_gradient(x, t)
    grads = {k: g.copy() for k, g in grads.items()}
    column_loss, column_grads = net.loss_and_gradient(x, t.reshape(-1, 1))  # by the layers
    assert column_loss == pytest.approx(loss, rel=1e-12)
    for key, g in grads.items():
        np.testing.assert_allclose(column_grads[key], g, rtol=1e-10, atol=1e-14)
    assert net.accuracy(x, t.reshape(-1, 1)) == net.accuracy(x, t)
    assert evaluate(net, x, t.reshape(-1, 1)) == pytest.approx(evaluate(net, x, t))


def small_sequential(seed):
    rng = np.random.default_rng(seed)
    return Sequential([Affine(rng.standard_normal((6, 5)), np.zeros(5)), Relu(),
                       Affine(rng.standard_normal((5, 3)), np.zeros(3))])  # fmt: skip


# Each network, small, made from a seed, and the shape of a batch it takes
SMALL_NETWORKS = {
    "MultiLayerNet": (lambda seed: MultiLayerNet(6, [5, 4], 3, seed=seed), (4, 6)),
    "TwoLayerNet": (lambda seed: TwoLayerNet(6, 5, 3, seed=seed), (4, 6)),
    "MultiLayerNetExtend": (
        lambda seed: MultiLayerNetExtend(
            6, [5], 3, use_dropout=True, use_batchnorm=True, seed=seed
        ),
        (4, 6),
    ),
    "SimpleConvNet": (
        lambda seed: SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3}, 5, 3, seed=seed),
        (4, 1, 6, 6),
    ),
    "DeepConvNet": (
        lambda seed: DeepConvNet((1, 8, 8), hidden_size=5, output_size=3, seed=seed),
        (4, 1, 8, 8),
    ),
    "Sequential": (small_sequential, (4, 6)),
}
SHARED_METHODS = ("predict", "loss", "accuracy", "gradient", "numerical_gradient", "record",
                  "config", "from_config", "save_params", "load_params", "__repr__")  # fmt: skip


@pytest.mark.parametrize("name", SMALL_NETWORKS)
def test_every_network_takes_the_shared_methods_from_one_base(name):
    cls = type(SMALL_NETWORKS[name][0](0))
    assert cls.__name__ == name
    assert [method for method in SHARED_METHODS if method in vars(cls)] == []
    assert repr(SMALL_NETWORKS[name][0](0)).startswith(f"{name}(")


@pytest.mark.parametrize("name", SMALL_NETWORKS)
def test_every_network_saves_and_loads_its_params_by_file_or_dict(name, tmp_path):
    make, shape = SMALL_NETWORKS[name]
    net, x = make(0), np.random.default_rng(0).random(shape)
    by_file, by_dict = make(1), make(2)
    arrays = dict(by_file.params)
    assert by_file.load_params(net.save_params(tmp_path / "params.pkl")) is None
    by_dict.load_params(net.params)
    for other in (by_file, by_dict):
        np.testing.assert_array_equal(other.predict(x), net.predict(x))
    assert all(by_file.params[key] is array for key, array in arrays.items())  # copied in place


@pytest.mark.parametrize("name", SMALL_NETWORKS)
def test_a_config_names_its_class_even_beside_the_books_networks(name):
    import chainrule.book.networks  # noqa: F401 (its classes have the same names)

    net = SMALL_NETWORKS[name][0](0)
    clone = network_from_config(net.config())
    assert type(clone) is type(net) and clone.config() == net.config()
    assert type(type(net).from_config(net.config(), seed=3)) is type(net)


def test_a_config_without_a_class_name_is_a_multilayer_net():
    config = MultiLayerNet(5, [4], 2, seed=0).config()
    del config["network"]
    assert type(network_from_config(config)) is MultiLayerNet


def test_loss_runs_the_forward_the_books_network_runs_unless_told():
    x, t = np.random.default_rng(1).standard_normal((4, 1, 8, 8)), np.array([0, 1, 2, 0])
    deep = DeepConvNet((1, 8, 8), hidden_size=20, output_size=3, seed=0)
    assert deep.loss(x, t) != deep.loss(x, t)  # the book's: a training forward, new masks
    assert deep.loss(x, t, train_flg=False) == deep.loss(x, t, train_flg=False)
    net = MultiLayerNet(8, [5], 3, weight_decay_lambda=0.1, seed=0)
    assert net.loss(x[:, 0, 0], t) == net.loss(x[:, 0, 0], t, train_flg=True)  # no dropout
    with pytest.raises(DTypeError, match="MultiLayerNet: train_flg must be True or False"):
        net.loss(x[:, 0, 0], t, "yes")


def test_accuracy_in_batches_counts_every_sample_for_every_network():
    rng = np.random.default_rng(4)
    net = MultiLayerNet(6, [5], 3, seed=0)
    x, t = batch(rng, n=7, d=6)
    correct = np.count_nonzero(net.predict(x).argmax(axis=1) == t)
    assert net.accuracy(x, t) == net.accuracy(x, t, batch_size=3) == correct / 7
    with pytest.raises(ShapeError, match="accuracy: 7 samples and 6 labels"):
        net.accuracy(x, t[:6])
    with pytest.raises(ShapeError, match=r"labels of shape \(7, 2\) do not match 7 samples"):
        net.accuracy(x, np.eye(2)[t % 2])
