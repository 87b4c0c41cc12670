"""DeepConvNet: the book's chapter 8 network, its parameters and layers, its He
initialisation, its gradient against numerical_gradient, checkpoints and config."""

import zipfile

import numpy as np
import pytest

from chainrule.errors import ArgumentError, CheckpointError, ShapeError
from chainrule.gradcheck import relative_error
from chainrule.layers import Affine, Convolution, Dropout, Pooling, Relu
from chainrule.networks import DeepConvNet, network_from_config
from chainrule.train import evaluate

# A DeepConvNet small enough for central differences: 8×8 images end at 1×1.
SMALL = {
    "input_dim": (1, 8, 8),
    **{f"conv_param_{i}": {"filter_num": n} for i, n in enumerate((2, 2, 3, 3, 4, 4), start=1)},
    "hidden_size": 5,
    "output_size": 3,
}


def test_the_books_parameters_and_layers():
    net = DeepConvNet(seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {
        "W1": (16, 1, 3, 3), "b1": (16,), "W2": (16, 16, 3, 3), "b2": (16,),
        "W3": (32, 16, 3, 3), "b3": (32,), "W4": (32, 32, 3, 3), "b4": (32,),
        "W5": (64, 32, 3, 3), "b5": (64,), "W6": (64, 64, 3, 3), "b6": (64,),
        "W7": (64 * 4 * 4, 50), "b7": (50,), "W8": (50, 10), "b8": (10,),
    }  # fmt: skip
    stage = [Convolution, Relu, Convolution, Relu, Pooling]
    kinds = [*stage * 3, Affine, Relu, Dropout, Affine, Dropout]
    layers = list(net.layers.values())
    assert [type(layer) for layer in layers] == kinds
    assert list(net.layers)[:5] == ["Conv1", "Relu1", "Conv2", "Relu2", "Pool1"]
    assert list(net.layers)[-5:] == ["Affine1", "Relu7", "Dropout1", "Affine2", "Dropout2"]
    assert [(c.stride, c.pad) for c in layers if isinstance(c, Convolution)] == [
        (1, 1), (1, 1), (1, 1), (1, 2), (1, 1), (1, 1)
    ]  # fmt: skip
    assert all((p.pool_h, p.pool_w, p.stride) == (2, 2, 2) for p in layers[4:15:5])
    assert [d.dropout_ratio for d in layers if isinstance(d, Dropout)] == [0.5, 0.5]
    weighted = [layer for layer in layers if isinstance(layer, (Convolution, Affine))]
    for i, layer in enumerate(weighted, start=1):  # the layers hold the very arrays
        assert layer.W is net.params[f"W{i}"] and layer.b is net.params[f"b{i}"]
    assert net.lastLayer is net.last_layer
    assert net.params["W1"].dtype == np.float64


def test_he_initialisation_with_the_books_fan_ins():
    # ch08/deep_convnet.py: pre_node_nums, and the weights drawn in order W1 ... W8
    book_fan_in = [
        1 * 3 * 3,
        16 * 3 * 3,
        16 * 3 * 3,
        32 * 3 * 3,
        32 * 3 * 3,
        64 * 3 * 3,
        64 * 4 * 4,
        50,
    ]
    net = DeepConvNet(seed=5)
    rng = np.random.default_rng(5)
    for i, fan_in in enumerate(book_fan_in, start=1):
        W = net.params[f"W{i}"]
        expected = rng.standard_normal(W.shape) * np.sqrt(2.0 / fan_in)
        np.testing.assert_allclose(W, expected, rtol=1e-12)
        assert not net.params[f"b{i}"].any()


def test_gradient_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    net = DeepConvNet(**SMALL, seed=1)
    for key, param in net.params.items():
        # Zero biases put the outputs of Conv4's all-padding windows (pad 2) exactly on
        # ReLU's kink, where central differences see half the slope.
        if key[0] == "b":
            param[...] = rng.uniform(0.05, 0.2, param.shape)
    x, t = rng.standard_normal((3, 1, 8, 8)), np.array([0, 2, 1])
    backprop = net.gradient(x, t)
    numerical = net.numerical_gradient(x, t)  # replays the masks of that training forward
    assert backprop.keys() == numerical.keys() == net.params.keys()
    for key in numerical:
        max_abs, rel = relative_error(backprop[key], numerical[key])
        assert rel <= 1e-6 or max_abs < 1e-10, f"{key}: relative error {rel:.2e}"


def test_predict_is_inference_and_loss_is_training():
    net = DeepConvNet(**SMALL, seed=2)
    x = np.random.default_rng(1).standard_normal((4, 1, 8, 8))
    np.testing.assert_array_equal(net.predict(x), net.predict(x))  # no dropout
    drawn = net.predict(x, train_flg=True)
    assert not np.allclose(drawn, net.predict(x, train_flg=True))  # new masks each time
    with pytest.raises(Exception, match="train_flg must be True or False"):
        net.predict(x, train_flg="False")


def test_same_seed_same_network_and_float32_on_request():
    a, b = DeepConvNet(**SMALL, seed=3), DeepConvNet(**SMALL, seed=3)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    x, t = np.random.default_rng(2).standard_normal((2, 1, 8, 8)), np.array([0, 1])
    ga, gb = a.gradient(x, t), b.gradient(x, t)  # the same dropout masks too
    assert all(np.array_equal(ga[k], gb[k]) for k in ga)
    net = DeepConvNet(**SMALL, dtype=np.float32, seed=0)
    assert net.predict(x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.gradient(x, t).values())


def test_accuracy_counts_every_image():
    net = DeepConvNet(**SMALL, seed=4)
    x = np.random.default_rng(3).standard_normal((7, 1, 8, 8))
    t = net.predict(x).argmax(axis=1)
    t[-1] = (t[-1] + 1) % 3  # the one wrong answer is in the remainder of batch_size=3
    assert net.accuracy(x, t, batch_size=3) == pytest.approx(6 / 7)
    assert evaluate(net, x, t)[1] == pytest.approx(6 / 7)


def test_params_saved_loaded_and_config_round_trip(tmp_path):
    net = DeepConvNet(**SMALL, seed=0)
    path = net.save_params(tmp_path / "params.pkl")  # the book's name; an npz inside
    assert zipfile.is_zipfile(path)
    other = network_from_config(net.config())
    assert type(other) is DeepConvNet and other.config() == net.config()
    arrays = dict(other.params)
    other.load_params(path)
    for key, param in other.params.items():
        assert param is arrays[key]
        np.testing.assert_array_equal(param, net.params[key])
    wrong = DeepConvNet(**{**SMALL, "hidden_size": 6})
    with pytest.raises(CheckpointError, match="W7"):
        wrong.load_params(path)


def test_errors():
    with pytest.raises(ArgumentError, match=r"conv_param_2: unknown \['filters'\]"):
        DeepConvNet(conv_param_2={"filters": 3})
    with pytest.raises(ShapeError, match="too small for Pool3"):
        DeepConvNet(input_dim=(1, 2, 2))
    with pytest.raises(ShapeError, match=r"Conv1: input must be images"):
        DeepConvNet(**SMALL).predict(np.zeros((2, 64)))


def test_chainrule_train_model_deepconvnet(tmp_path, capsys):
    from chainrule.checkpoint import load_checkpoint
    from chainrule.cli import main

    path = tmp_path / "deep.npz"
    assert main(["train", "--model", "deepconvnet", "--iters", "2", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "training DeepConvNet(1×28×28, filters 16-16-32-32-64-64, 50, 10, float32), init he "
        "on mnist-5k (4000 train / 1000 test), Adam(lr=0.001"
    )
    checkpoint = load_checkpoint(path)
    assert checkpoint.params["W7"].shape == (1024, 50)
    assert checkpoint.params["W1"].dtype == np.float32  # the command line's float32
    resumed = ["train", "--resume", str(path), "--iters", "3", "--model", "deepconvnet"]
    assert main([*resumed, "--quiet"]) == 0  # the checkpoint's own --model is no change


@pytest.mark.parametrize("input_dim", [(1, 28, 28), (2, 16, 14)])
def test_a_checkpoints_description_implies_the_networks_shapes(input_dim):
    from chainrule.description import check_description, parameter_shapes

    net = DeepConvNet(input_dim, conv_param_4={"pad": 1, "stride": 2}, hidden_size=7, seed=0)
    check_description({"network": net.config()}, "run.npz")
    assert parameter_shapes(net.config()) == {k: v.shape for k, v in net.params.items()}
