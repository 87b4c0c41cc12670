"""Dropout and BatchNormalization (chapter 6): central differences in float64 (batch
normalisation in training mode; dropout with its mask held), the documented differences
from the book, train_flg, and the node protocol of the four new layers."""

import numpy as np
import pytest

from chainrule.errors import DTypeError, ShapeError, StateError
from chainrule.explain import explain
from chainrule.gradcheck import check_layer
from chainrule.graph import Graph
from chainrule.layers import BatchNormalization, Convolution, Dropout, Pooling
from chainrule.viz.diagram import to_dot

# --------------------------------------------------------------------------- Dropout


class HeldMask(Dropout):
    """Dropout whose every forward draws the same mask (its generator rewound), so that
    central differences see one function."""

    def __init__(self, ratio, seed):
        super().__init__(ratio, seed=seed)
        self.start = self.rng.bit_generator.state

    def forward(self, x, train_flg=True):
        self.rng.bit_generator.state = self.start
        return super().forward(x, train_flg)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4, 4)])
def test_dropout_gradient_matches_numerical_with_its_mask_held(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer = HeldMask(0.4, seed=1)
    report = check_layer(layer, x)
    assert report.passed, report.format()
    assert 0 < layer.mask.mean() < 1


def test_dropout_is_the_books_training_masks_inference_scales():
    layer = Dropout(0.2, seed=0)
    x = np.full((400, 250), 3.0)
    out = layer.forward(x)
    kept = layer.mask
    assert kept.dtype == bool and kept.mean() == pytest.approx(0.8, abs=0.01)
    np.testing.assert_array_equal(out, np.where(kept, 3.0, 0.0))
    dout = np.full(x.shape, 2.0)
    np.testing.assert_array_equal(layer.backward(dout), np.where(kept, 2.0, 0.0))
    # inference passes every input, scaled to the mean it has while training
    inference = layer.forward(x, train_flg=False)
    np.testing.assert_array_equal(inference, np.full(x.shape, 3.0 * 0.8))
    assert out.mean() == pytest.approx(inference.mean(), rel=0.01)


def test_dropout_float32_stays_float32_and_ratio_zero_keeps_everything():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert Dropout(0.5, seed=0).forward(x).dtype == np.float32
    assert Dropout(0.5, seed=0).forward(x, train_flg=False).dtype == np.float32
    np.testing.assert_array_equal(Dropout(0.0, seed=0).forward(x), x)
    np.testing.assert_array_equal(Dropout(0.0).forward(x, train_flg=False), x)


def test_dropout_masks_are_reproducible_by_seed():
    x = np.ones((20, 30))
    a, b, c = Dropout(seed=7), Dropout(seed=7), Dropout(seed=8)
    first = [a.forward(x).copy() for _ in range(3)]
    np.testing.assert_array_equal(first, [b.forward(x) for _ in range(3)])
    assert not np.array_equal(first[0], c.forward(x))
    assert not np.array_equal(first[0], first[1])  # a new mask each forward
    shared = np.random.default_rng(3)
    assert Dropout(seed=shared).rng is Dropout(seed=shared).rng


def test_dropout_backward_needs_a_training_forward():
    layer = Dropout(0.5, seed=0)
    with pytest.raises(StateError, match=r"Dropout\.backward needs a forward with train_flg=True"):
        layer.backward(np.ones(3))
    layer.forward(np.ones(3))
    layer.forward(np.ones(3), train_flg=False)
    with pytest.raises(StateError, match="the last forward was inference"):
        layer.backward(np.ones(3))


@pytest.mark.parametrize("flag", ["False", 0, 1, None, 0.5, np.array([0, 1])])
def test_train_flg_must_be_true_or_false(flag):
    x = np.ones((4, 3))
    with pytest.raises(DTypeError, match=r"Dropout: train_flg must be True or False, got"):
        Dropout().forward(x, flag)
    with pytest.raises(DTypeError, match=r"BatchNorm1: train_flg must be True or False"):
        BatchNormalization(np.ones(3), np.zeros(3), name="BatchNorm1").forward(x, flag)
    Dropout().forward(x, np.bool_(False))  # NumPy's booleans are booleans


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), "0.5"])
def test_dropout_ratio_must_be_a_probability_below_one(ratio):
    with pytest.raises(ValueError, match=r"dropout_ratio must be in \[0, 1\)"):
        Dropout(ratio)


# --------------------------------------------------------------------------- BatchNormalization


@pytest.mark.parametrize("shape", [(6, 5), (3, 4), (5, 3, 2, 2), (4, 2, 3)])
def test_batchnorm_gradients_in_training_mode_match_numerical(shape):
    rng = np.random.default_rng(1)
    features = int(np.prod(shape[1:]))
    layer = BatchNormalization(rng.standard_normal(features), rng.standard_normal(features))
    report = check_layer(layer, rng.standard_normal(shape) * 3 + 1)
    assert [c.name for c in report.checks] == ["input 0", "gamma", "beta"]
    assert report.passed, report.format()


def test_batchnorm_training_normalises_each_feature_over_the_batch():
    rng = np.random.default_rng(2)
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    layer = BatchNormalization(gamma, beta)
    x = rng.standard_normal((200, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 10.0]
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=0), beta, atol=1e-12)
    # σ² + ε in the denominator: the standard deviation is just below γ
    expected = gamma * x.std(axis=0) / np.sqrt(x.var(axis=0) + 1e-6)
    np.testing.assert_allclose(y.std(axis=0), expected, rtol=1e-12)
    assert layer.eps == 1e-6  # the book's 10e-7


def test_batchnorm_on_images_normalises_each_value_of_a_sample_as_a_feature():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 2, 3, 3))
    layer = BatchNormalization(np.ones(18), np.zeros(18))
    y = layer.forward(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.reshape(8, 18).mean(axis=0), 0, atol=1e-12)


def test_batchnorm_running_statistics():
    rng = np.random.default_rng(4)
    layer = BatchNormalization(np.ones(2), np.zeros(2), momentum=0.8)
    x1, x2 = rng.standard_normal((10, 2)), rng.standard_normal((10, 2)) + 4
    layer.forward(x1, train_flg=False)  # untrained inference: mean 0, variance 1
    np.testing.assert_array_equal(layer.running_mean, [0, 0])
    np.testing.assert_array_equal(layer.running_var, [1, 1])
    layer.forward(x1)
    layer.forward(x2)
    mean = 0.8 * (0.8 * 0 + 0.2 * x1.mean(0)) + 0.2 * x2.mean(0)
    var = 0.8 * (0.8 * 1 + 0.2 * x1.var(0)) + 0.2 * x2.var(0)  # biased, as the book's
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-12)
    x3 = rng.standard_normal((3, 2))
    expected = (x3 - mean) / np.sqrt(var + 1e-6)
    np.testing.assert_allclose(layer.forward(x3, train_flg=False), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)  # inference moves nothing


def test_batchnorm_given_running_statistics_are_used_and_checked():
    layer = BatchNormalization(
        np.ones(2), np.zeros(2), running_mean=np.array([1.0, 2.0]), running_var=np.array([4.0, 9])
    )
    out = layer.forward(np.array([[3.0, 2.0]]), train_flg=False)
    np.testing.assert_allclose(out, [[2 / np.sqrt(4 + 1e-6), 0.0]])
    with pytest.raises(ShapeError, match=r"running_var must have gamma's shape \(2,\)"):
        BatchNormalization(np.ones(2), np.zeros(2), running_var=np.ones(3))


def test_batchnorm_float32_and_one_sample():
    layer = BatchNormalization(np.ones(4, np.float32), np.full(4, 0.5, np.float32))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert layer.forward(x).dtype == np.float32
    assert layer.running_var.dtype == np.float32
    # One sample (the book's batch_norm_gradient_check.py): x̂ = 0, so y = β and dx = 0.
    out = layer.forward(x[:1])
    np.testing.assert_array_equal(out, [[0.5] * 4])
    assert not layer.backward(np.ones((1, 4), np.float32)).any()


def test_batchnorm_errors():
    layer = BatchNormalization(np.ones(3), np.zeros(3), name="BatchNorm1")
    with pytest.raises(ShapeError, match=r"BatchNorm1: input of shape \(4, 5\) does not fit 3"):
        layer.forward(np.ones((4, 5)))
    with pytest.raises(ShapeError, match="BatchNorm1: input of shape"):
        layer.forward(np.ones(3))  # one sample without its batch axis
    with pytest.raises(StateError, match=r"BatchNorm1\.backward needs a forward with train_flg"):
        layer.backward(np.ones((4, 3)))
    layer.forward(np.ones((4, 3)), train_flg=False)
    with pytest.raises(StateError, match="inference"):
        layer.backward(np.ones((4, 3)))
    layer.forward(np.ones((4, 3)))
    with pytest.raises(ShapeError, match=r"dout has shape \(3, 3\), expected \(4, 3\)"):
        layer.backward(np.ones((3, 3)))
    with pytest.raises(ShapeError, match="gamma and beta must be 1-d of one shape"):
        BatchNormalization(np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNormalization(np.ones(3), np.zeros(3), momentum=1.5)


def test_batchnorm_backward_changes_neither_dout_nor_saved_arrays():
    rng = np.random.default_rng(5)
    layer = BatchNormalization(rng.standard_normal(3), rng.standard_normal(3))
    layer.forward(rng.standard_normal((5, 3)))
    saved = {k: np.copy(v) for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    dout = rng.standard_normal((5, 3))
    before = dout.copy()
    np.testing.assert_array_equal(layer.backward(dout), layer.backward(dout))
    np.testing.assert_array_equal(dout, before)
    for key, value in saved.items():
        if key not in ("dgamma", "dbeta"):
            np.testing.assert_array_equal(getattr(layer, key), value)


# --------------------------------------------------------------------------- node protocol


def new_layers(rng):
    """Each new layer with an input it fits."""
    images = rng.standard_normal((2, 2, 5, 5))
    return [
        (Dropout(0.5, seed=0), rng.standard_normal((3, 4))),
        (BatchNormalization(rng.standard_normal(4), rng.standard_normal(4)), rng.random((3, 4))),
        (Convolution(rng.standard_normal((3, 2, 3, 3)), np.zeros(3), pad=1), images),
        (Pooling(2, 2, stride=2), images),
    ]


@pytest.mark.parametrize("index", range(4))
def test_each_new_layer_describes_itself(index):
    layer, x = new_layers(np.random.default_rng(6))[index]
    assert isinstance(layer.symbol, str) and layer.symbol
    assert "=" in layer.formula
    assert len(layer.local) == 1  # one input to differentiate
    out = layer.forward(x)
    dout = np.random.default_rng(7).standard_normal(out.shape)
    dx = layer.backward(dout)
    (local,) = layer.local_values()
    for gradient, rule in getattr(layer, "param_rules", ()):
        assert isinstance(rule, str)
        assert np.shape(getattr(layer, gradient)) == np.shape(getattr(layer, gradient[1:]))
    # the local derivatives, as numbers, are those backward multiplies by
    if isinstance(layer, Dropout):
        np.testing.assert_array_equal(dx, dout * local)
    elif isinstance(layer, BatchNormalization):  # ∂y[i, d]/∂x[j, d], (N, N, D)
        np.testing.assert_allclose(dx, np.einsum("id,ijd->jd", dout, local), atol=1e-12)
    elif isinstance(layer, Convolution):
        assert local.shape == (3, 2 * 3 * 3)
    else:  # how many windows' maximum each input is: one or none here
        assert local.shape == x.shape and set(np.unique(local)) <= {0.0, 1.0}
        assert local.sum() == out.size


def test_new_layers_record_into_a_graph_and_explain_and_draw():
    rng = np.random.default_rng(8)
    graph = Graph()
    x = graph.input(rng.standard_normal((2, 1, 6, 6)), "x")
    conv = graph.apply(Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2)), x)
    pooled = graph.apply(Pooling(2, 2, stride=2), conv)
    normed = graph.apply(BatchNormalization(np.ones(8), np.zeros(8)), pooled)
    out = graph.apply(Dropout(0.5, seed=0), normed)
    graph.backward(out)
    assert x.grad.shape == (2, 1, 6, 6)
    text = explain(graph)
    assert "Convolution" in text and "Pooling" in text and "BatchNormalization" in text
    assert "digraph" in to_dot(graph)
