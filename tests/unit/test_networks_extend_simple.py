"""MultiLayerNetExtend and SimpleConvNet: the book's parameters and layers, gradient
against numerical_gradient in float64, train_flg, checkpoints and errors."""

import pickle
import zipfile

import numpy as np
import pytest

from chainrule.errors import CheckpointError, DTypeError, ShapeError, UnsafePickleError
from chainrule.explain import explain
from chainrule.gradcheck import check_gradients, relative_error
from chainrule.networks import MultiLayerNet, MultiLayerNetExtend, SimpleConvNet
from chainrule.optim import SGD
from chainrule.train import evaluate, fit


def assert_gradients_agree(backprop, numerical, tolerance=1e-7):
    """Relative error at most ``tolerance``, or both gradients zero up to rounding (the
    bias of an Affine before batch normalisation: a shift the normalisation takes away)."""
    assert backprop.keys() == numerical.keys()
    for key in numerical:
        max_abs, rel = relative_error(backprop[key], numerical[key])
        assert rel <= tolerance or max_abs < 1e-10, f"{key}: relative error {rel:.2e}"


# --------------------------------------------------------------------------- MultiLayerNetExtend


def test_extend_has_the_books_parameters_and_layers():
    net = MultiLayerNetExtend(784, [100, 50], 10, use_batchnorm=True, use_dropout=True)
    assert list(net.params) == [
        *("W1", "b1", "W2", "b2", "W3", "b3"),
        *("gamma1", "beta1", "gamma2", "beta2"),
    ]
    assert net.params["gamma2"].tolist() == [1.0] * 50 and not net.params["beta1"].any()
    assert list(net.layers) == [
        *("Affine1", "BatchNorm1", "Relu1", "Dropout1"),
        *("Affine2", "BatchNorm2", "Relu2", "Dropout2", "Affine3"),
    ]
    assert net.layers["BatchNorm1"].gamma is net.params["gamma1"]  # updated in place, trained
    assert net.layers["Dropout1"].dropout_ratio == 0.5
    assert net.dtype == np.float64  # the book computes in float64
    plain = MultiLayerNetExtend(784, [100], 10)
    assert list(plain.layers) == ["Affine1", "Relu1", "Affine2"]


@pytest.mark.parametrize(
    ("activation", "batchnorm", "dropout", "decay"),
    [
        ("sigmoid", True, False, 0.0),
        ("sigmoid", True, True, 0.1),
        ("sigmoid", False, True, 0.0),
        ("relu", True, True, 0.05),
        ("relu", False, False, 0.0),
    ],
)
def test_extend_gradient_matches_numerical_gradient(activation, batchnorm, dropout, decay):
    # As the book's gradient check: gradient first, then numerical_gradient on the same
    # network, which draws the dropout masks of gradient's training forward again.
    rng = np.random.default_rng(0)
    net = MultiLayerNetExtend(
        7, [6, 5], 3, activation, weight_init_std=0.5, weight_decay_lambda=decay,
        use_dropout=dropout, dropout_ration=0.3, use_batchnorm=batchnorm, seed=3,
    )  # fmt: skip
    x, t = rng.standard_normal((5, 7)), rng.integers(0, 3, 5)
    backprop = {k: g.copy() for k, g in net.gradient(x, t).items()}
    assert_gradients_agree(backprop, net.numerical_gradient(x, t))


def test_extend_numerical_gradient_leaves_running_statistics_and_the_masks_to_come():
    rng = np.random.default_rng(1)
    net = MultiLayerNetExtend(4, [5], 2, use_batchnorm=True, use_dropout=True, seed=0)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 2, 6)
    net.gradient(x, t)
    norm, masks = net.layers["BatchNorm1"], net.layers["Dropout1"].rng
    mean, var = norm.running_mean.copy(), norm.running_var.copy()
    after_gradient = masks.bit_generator.state
    net.numerical_gradient(x, t)
    np.testing.assert_array_equal(norm.running_mean, mean)
    np.testing.assert_array_equal(norm.running_var, var)
    # the generator stands where gradient's training forward left it: the next masks are
    # those that would have come next without the check
    assert masks.bit_generator.state == after_gradient


def test_extend_predicts_in_inference_mode_unless_told():
    rng = np.random.default_rng(2)
    net = MultiLayerNetExtend(4, [8], 3, use_batchnorm=True, use_dropout=True, seed=1)
    x, t = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    np.testing.assert_array_equal(net.predict(x), net.predict(x))  # no dropout, no batch stats
    assert not np.array_equal(net.predict(x, train_flg=True), net.predict(x, train_flg=True))
    assert net.loss(x, t) == net.loss(x, t, train_flg=False)
    with pytest.raises(DTypeError, match=r"MultiLayerNetExtend: train_flg must be True or False"):
        net.predict(x, t)  # labels where the flag goes
    with pytest.raises(DTypeError, match="train_flg"):
        net.loss(x, t, "True")


def test_plain_extend_is_a_multilayer_net_and_takes_the_fast_step():
    rng = np.random.default_rng(3)
    extend = MultiLayerNetExtend(6, [5, 4], 3, seed=2)
    plain = MultiLayerNet(6, [5, 4], 3, dtype=np.float64, seed=2)
    x, t = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    grads = extend.gradient(x, t)
    assert extend.fast_step._train is not None  # the engine ran, not the layers
    for key, g in plain.gradient(x, t).items():
        np.testing.assert_array_equal(grads[key], g)


def test_extend_trains_with_fit_and_its_fused_sgd_step():
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((3, 8)) * 3
    labels = rng.integers(0, 3, 300)
    x = centres[labels] + rng.standard_normal((300, 8))
    net = MultiLayerNetExtend(8, [16, 16], 3, use_batchnorm=True, use_dropout=True, seed=0)
    gamma = net.params["gamma1"].copy()
    history = fit(net, SGD(lr=0.1), x, labels, epochs=5, batch_size=30)
    assert history.losses[-1] < history.losses[0]
    assert not np.array_equal(net.params["gamma1"], gamma)  # gamma and beta are trained
    assert history.evaluations[-1].train_accuracy > 0.9
    assert net.accuracy(x, labels) == evaluate(net, x, labels)[1]


def test_extend_config_round_trip_and_recorded_graph():
    net = MultiLayerNetExtend(5, [4], 2, use_dropout=True, dropout_ration=0.2, use_batchnorm=True)
    copy_ = MultiLayerNet.from_config(net.config())
    assert isinstance(copy_, MultiLayerNetExtend)
    assert copy_.config() == net.config()
    assert {k: v.shape for k, v in copy_.params.items()} == {
        k: v.shape for k, v in net.params.items()
    }
    graph, loss = net.record(np.random.default_rng(5).standard_normal((3, 5)), np.array([0, 1, 1]))
    graph.backward(loss)
    assert "BatchNormalization" in explain(graph)


# --------------------------------------------------------------------------- SimpleConvNet


def test_simple_convnet_has_the_books_parameters_and_layers():
    net = SimpleConvNet()
    assert {k: v.shape for k, v in net.params.items()} == {
        "W1": (30, 1, 5, 5),
        "b1": (30,),
        "W2": (30 * 12 * 12, 100),
        "b2": (100,),
        "W3": (100, 10),
        "b3": (10,),
    }
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert net.params["W1"].std() == pytest.approx(0.01, rel=0.1)
    assert net.dtype == np.float64
    pool = net.layers["Pool1"]
    assert (pool.pool_h, pool.pool_w, pool.stride) == (2, 2, 2)
    assert net.layers["Conv1"].W is net.params["W1"]


def test_simple_convnet_sizes_images_that_are_not_square_or_even():
    net = SimpleConvNet(
        input_dim=(2, 11, 9),
        conv_param={"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 2},
        hidden_size=6,
        output_size=3,
        seed=0,
    )
    # conv: (11 + 2 - 3) // 2 + 1 = 6 by (9 + 2 - 3) // 2 + 1 = 5; pooled 3 by 2
    assert net.params["W2"].shape == (4 * 3 * 2, 6)
    assert net.predict(np.zeros((3, 2, 11, 9))).shape == (3, 3)
    partial = SimpleConvNet(conv_param={"filter_num": 8})  # the rest as the book's
    assert partial.params["W1"].shape == (8, 1, 5, 5)


@pytest.mark.parametrize(("pad", "stride"), [(0, 1), (1, 2)])
def test_simple_convnet_backprop_matches_central_differences(pad, stride):
    rng = np.random.default_rng(6)
    net = SimpleConvNet(
        input_dim=(2, 7, 7),
        conv_param={"filter_num": 3, "filter_size": 3, "pad": pad, "stride": stride},
        hidden_size=5,
        output_size=4,
        weight_init_std="he",
        seed=1,
    )
    x, t = rng.standard_normal((3, 2, 7, 7)), rng.integers(0, 4, 3)
    report = check_gradients(net, x, t)  # steps around the ReLU kinks
    assert report.passed, report.format()
    assert_gradients_agree(net.gradient(x, t), net.numerical_gradient(x, t), tolerance=1e-6)


def test_simple_convnet_accuracy_counts_every_image():
    rng = np.random.default_rng(7)
    net = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 2, "filter_size": 3},
                        hidden_size=4, output_size=3, seed=0)  # fmt: skip
    x = rng.standard_normal((7, 1, 8, 8))
    t = net.predict(x).argmax(axis=1)
    t[-1] = (t[-1] + 1) % 3  # the one wrong answer is in the remainder of batch_size=3
    assert net.accuracy(x, t, batch_size=3) == pytest.approx(6 / 7)
    assert net.accuracy(x, np.eye(3)[t]) == pytest.approx(6 / 7)
    assert evaluate(net, x, t)[1] == pytest.approx(6 / 7)


def test_simple_convnet_params_saved_and_loaded_without_pickle(tmp_path):
    net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3},
                        hidden_size=8, seed=0)  # fmt: skip
    path = tmp_path / "params.pkl"  # the book's name; the contents are an npz
    assert net.save_params(path) == path
    assert zipfile.is_zipfile(path)
    other = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3},
                          hidden_size=8, seed=1, dtype=np.float32)  # fmt: skip
    arrays = {k: v for k, v in other.params.items()}
    other.load_params(path)
    for key, param in other.params.items():
        assert param is arrays[key]  # in place: the layers keep their arrays
        np.testing.assert_allclose(param, net.params[key], rtol=1e-6)
    x = np.random.default_rng(8).random((2, 1, 10, 10))
    np.testing.assert_allclose(other.predict(x), net.predict(x), rtol=1e-4)


def test_simple_convnet_reads_the_books_pickle_refuses_a_payload_and_other_shapes(tmp_path):
    net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3})
    book = SimpleConvNet(
        input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3}, seed=1
    )
    pickled = tmp_path / "params.pkl"
    pickled.write_bytes(pickle.dumps({k: v for k, v in book.params.items()}))  # as the book
    net.load_params(pickled)
    for key, value in book.params.items():
        np.testing.assert_array_equal(net.params[key], value)
    written = tmp_path / "written"

    class Payload:
        def __reduce__(self):
            return (open, (str(written), "w"))

    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps({"W1": Payload()}))
    with pytest.raises(UnsafePickleError, match="open"):
        net.load_params(hostile)
    assert not written.exists()
    other = tmp_path / "other.npz"
    SimpleConvNet(
        input_dim=(1, 10, 10), conv_param={"filter_num": 5, "filter_size": 3}
    ).save_params(other)
    before = net.params["W1"].copy()
    with pytest.raises(CheckpointError, match=r"'W1': shape differs: network \(4, 1, 3, 3\), "
                       r"checkpoint \(5, 1, 3, 3\)"):  # fmt: skip
        net.load_params(other)
    np.testing.assert_array_equal(net.params["W1"], before)


def test_simple_convnet_errors():
    net = SimpleConvNet()
    with pytest.raises(ShapeError, match=r"Conv1: input must be images .*flatten=False"):
        net.predict(np.zeros((2, 784)))
    with pytest.raises(ValueError, match=r"conv_param: unknown \['filter_sizes'\]"):
        SimpleConvNet(conv_param={"filter_sizes": 3})
    with pytest.raises(ShapeError, match=r"5×5 filters .* on 5×5 images leave 1×1, too small"):
        SimpleConvNet(input_dim=(1, 5, 5))
    with pytest.raises(ValueError, match=r"input_dim must be one image's \(C, H, W\)"):
        SimpleConvNet(input_dim=(28, 28))


def test_evaluation_of_a_convnet_goes_in_chunks_small_enough(monkeypatch):
    net = SimpleConvNet(seed=0)
    seen = []
    predict = net.predict_fast  # what evaluation runs: the fast step's forward pass
    monkeypatch.setattr(net, "predict_fast", lambda x: seen.append(len(x)) or predict(x))
    x = np.zeros((300, 1, 28, 28), np.float32)
    evaluate(net, x, np.zeros(300, np.int64))
    # the convolution's 30 channels of 24·24 in float64: 138 KB an image, 60 in 8 MB
    assert max(seen) == 60 and sum(seen) == 300
