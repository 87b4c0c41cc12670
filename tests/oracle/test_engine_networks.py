"""Every network through the engine: Sequential's names and arrays, each network's
gradient against numerical_gradient and against its layers, gradients that stay valid,
the engine's forward as predict, and fit on the engine's buffers."""

import numpy as np
import pytest
from engine_helpers import assert_same_step

from chainrule.gradcheck import relative_error
from chainrule.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)
from chainrule.networks import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    Sequential,
    SimpleConvNet,
    TwoLayerNet,
)
from chainrule.optim import Adam
from chainrule.train import fit


def small_sequential(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    layers = [
        Convolution(rng.standard_normal((3, 2, 3, 3)).astype(dtype) * 0.5, np.full(3, 0.1, dtype),
                    1, 1),
        Relu(),
        Pooling(2, 2, 2),
        Affine(rng.standard_normal((3 * 3 * 3, 5)).astype(dtype) * 0.5, np.full(5, 0.1, dtype)),
        BatchNormalization(np.ones(5, dtype), np.zeros(5, dtype)),
        Sigmoid(),
        Dropout(0.3, seed=seed),
        Affine(rng.standard_normal((5, 3)).astype(dtype) * 0.5, np.zeros(3, dtype)),
    ]  # fmt: skip
    return Sequential(layers)


def images(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 6, 6)), rng.integers(0, 3, n)


DEEP = {f"conv_param_{i}": {"filter_num": 2} for i in range(1, 7)}
CONV = {"filter_num": 3, "filter_size": 3}
NETWORKS = {
    "TwoLayerNet": lambda: (TwoLayerNet(6, 5, 3, seed=0), (4, 6)),
    "MultiLayerNet": lambda: (
        MultiLayerNet(6, [5, 4], 3, "sigmoid", weight_decay_lambda=0.1, seed=0),
        (4, 6),
    ),
    "MultiLayerNetExtend": lambda: (
        MultiLayerNetExtend(
            6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.2, seed=0
        ),
        (5, 6),
    ),
    "SimpleConvNet": lambda: (SimpleConvNet((2, 6, 6), CONV, 5, 3, "he", seed=0), (4, 2, 6, 6)),
    "DeepConvNet": lambda: (
        DeepConvNet((1, 8, 8), **DEEP, hidden_size=4, output_size=3, seed=0),
        (4, 1, 8, 8),
    ),
    "Sequential": lambda: (small_sequential(), (4, 2, 6, 6)),
}


def batch(shape, seed=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.integers(0, 3, shape[0])


def test_sequential_names_the_layers_arrays_as_the_book():
    net = small_sequential()
    assert list(net.params) == ["W1", "b1", "W2", "b2", "gamma1", "beta1", "W3", "b3"]
    layers = list(net.layers.values())
    assert net.params["W1"] is layers[0].W and net.params["gamma1"] is layers[4].gamma
    assert net.params["b3"] is layers[7].b
    assert list(net.layers) == [
        *("Conv1", "Relu1", "Pool1", "Affine1", "BatchNorm1", "Sigmoid1", "Dropout1", "Affine2")
    ]
    assert net.dtype == np.float64 and net.lastLayer is net.last_layer
    assert repr(net).startswith("Sequential(Conv1 → Relu1 → Pool1")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_networks_gradient_matches_numerical_gradient(name):
    net, shape = NETWORKS[name]()
    for key, param in net.params.items():  # biases off zero: no ReLU input sits on its kink
        if key[0] == "b":
            param[...] = np.random.default_rng(3).uniform(0.05, 0.2, param.shape)
    x, t = batch(shape)
    backprop = net.gradient(x, t)  # by the engine
    assert net.fast_step._train is not None
    numerical = net.numerical_gradient(x, t)
    assert backprop.keys() == numerical.keys() == net.params.keys()
    for key in numerical:
        max_abs, rel = relative_error(backprop[key], numerical[key])
        assert rel <= 1e-6 or max_abs < 1e-9, f"{key}: relative error {rel:.2e}"


@pytest.mark.parametrize("name", list(NETWORKS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_network_on_the_engine_equals_its_layers(name, dtype):
    net, shape = NETWORKS[name]()
    if dtype == np.float32:
        net = _as_float32(name)
    x, t = batch(shape)
    assert_same_step(net, x.astype(net.dtype), t, 0.5)
    assert_same_step(net, x.astype(net.dtype), t)  # again, in the same buffers


def _as_float32(name):
    net, _ = NETWORKS[name]()
    if name == "Sequential":
        return small_sequential(np.float32)
    config = net.config()
    config["dtype"] = "float32"
    return (
        type(net).from_config(config)
        if name != "MultiLayerNetExtend"
        else MultiLayerNet.from_config(config)
    )


@pytest.mark.parametrize("name", list(NETWORKS))
def test_gradients_stay_valid_after_the_next_call(name):
    net, shape = NETWORKS[name]()
    (x1, t), (x2, _) = batch(shape, seed=4), batch(shape, seed=5)
    first = net.gradient(x1, t)
    kept = {key: g.copy() for key, g in first.items()}
    _, second = net.loss_and_gradient(x2, t)
    for key in first:
        assert second[key] is not first[key]
        np.testing.assert_array_equal(first[key], kept[key])


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_engines_forward_is_predict(name):
    net, shape = NETWORKS[name]()
    x, t = batch(shape)
    net.gradient(x, t)  # running statistics moved off their start
    expected = net.predict(x)
    got = net.predict_fast(x)
    assert got is not net.predict_fast(x)  # a new array each time
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_a_sequential_with_a_layer_of_its_own_runs_on_the_layers():
    class Doubling:
        def forward(self, x):
            return 2 * x

        def backward(self, dout):
            return 2 * dout

    rng = np.random.default_rng(0)
    net = Sequential([Affine(rng.standard_normal((4, 3)), np.zeros(3)), Doubling(), Relu(),
                      Affine(rng.standard_normal((3, 2)), np.zeros(2))])  # fmt: skip
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 2, 5)
    assert_same_step(net, x, t, engine=False)
    assert net.predict_fast(x).shape == (5, 2)


def test_fit_trains_every_network_on_the_engines_buffers(monkeypatch):
    """fit takes the engine's gradients as they are: no copy a step."""
    net, shape = NETWORKS["DeepConvNet"]()
    x, t = batch((40, *shape[1:]))
    copying = lambda *a, **k: pytest.fail("fit went through the copying method")  # noqa: E731
    monkeypatch.setattr(DeepConvNet, "loss_and_gradient", copying)
    history = fit(net, Adam(lr=0.01), x, t, batch_size=10, epochs=2)
    assert len(history.losses) == 8 and np.isfinite(history.losses).all()


def test_sequential_checks_its_layers():
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(ValueError, match="one dtype, got float32, float64"):
        Sequential(
            [
                Affine(np.ones((2, 2)), np.zeros(2)),
                Affine(np.ones((2, 2), np.float32), np.zeros(2, np.float32)),
            ]
        )


def test_sequential_config_rebuilds_the_architecture_and_its_checkpoint_loads(tmp_path):
    from chainrule.errors import ArgumentError
    from chainrule.networks import network_from_config

    net = small_sequential(np.float32)
    config = net.config()
    assert config["layers"][0] == {
        "layer": "Convolution",
        "shape": [3, 2, 3, 3],
        "stride": 1,
        "pad": 1,
    }
    assert config["layers"][4] == {
        "layer": "BatchNormalization",
        "features": 5,
        "momentum": 0.9,
        "eps": 1e-6,
    }
    clone = network_from_config(config)
    assert type(clone) is Sequential and clone.config() == config
    assert {k: (v.shape, v.dtype) for k, v in clone.params.items()} == {
        k: (v.shape, v.dtype) for k, v in net.params.items()
    }
    assert np.std(clone.params["W2"]) == pytest.approx(np.sqrt(2 / 27), rel=0.3)  # He
    clone.load_params(net.save_params(tmp_path / "seq.npz"))
    x, _ = images()
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))

    class Doubling:
        def forward(self, x):
            return 2 * x

    with pytest.raises(ArgumentError, match="a Doubling layer is not one of chainrule's"):
        Sequential([Doubling(), *net.layers.values()]).config()
