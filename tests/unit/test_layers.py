"""Every node: float64 central-difference checks, broadcasting, shapes, no in-place edits."""

import numpy as np
import pytest

from chainrule.errors import ShapeError, StateError
from chainrule.gradcheck import check_layer
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, sigmoid, sum_to_shape


def rand(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize(
    ("x_shape", "y_shape"),
    [((4, 3), (4, 3)), ((1, 5), (1, 5)), ((4, 3), (3,)), ((2, 1, 3), (4, 1)), ((3,), ())],
)
@pytest.mark.parametrize("layer_type", [MulLayer, AddLayer])
def test_mul_add_gradients_match_numerical(layer_type, x_shape, y_shape):
    rng = np.random.default_rng(1)
    report = check_layer(layer_type(), rand(rng, *x_shape), rand(rng, *y_shape))
    assert len(report.checks) == 2
    assert report.passed, report.format()


def test_broadcast_gradient_is_summed_to_input_shape():
    x, y = np.ones((2, 3)), np.array([1.0, 2.0, 3.0])
    layer = AddLayer()
    layer.forward(x, y)
    dx, dy = layer.backward(np.arange(6.0).reshape(2, 3))
    assert dx.shape == (2, 3)
    # each y_j reached both rows, so it receives the sum of the column: 0+3, 1+4, 2+5
    np.testing.assert_array_equal(dy, [3.0, 5.0, 7.0])


def test_sum_to_shape_keeps_size_one_axes():
    grad = np.ones((5, 2, 3))
    assert sum_to_shape(grad, (2, 1)).tolist() == [[15.0], [15.0]]
    assert sum_to_shape(grad, ()) == 30.0


def test_mul_layer_on_python_floats():
    layer = MulLayer()
    assert layer.forward(3.0, 4.0) == 12.0
    assert layer.backward(2.0) == (8.0, 6.0)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (2, 3, 4)])
@pytest.mark.parametrize("layer_type", [Relu, Sigmoid])
def test_activation_gradients_match_numerical(layer_type, shape):
    rng = np.random.default_rng(2)
    x = rand(rng, *shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink more than h away
    report = check_layer(layer_type(), x)
    assert report.passed, report.format()


def test_relu_values():
    layer = Relu()
    out = layer.forward(np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(layer.backward(np.array([5.0, 5.0, 5.0])), [0.0, 0.0, 5.0])


def test_relu_backward_sends_nothing_where_x_is_at_most_zero_even_an_infinite_dout():
    # The book sets dx to 0 there (dout[mask] = 0); a product with the mask would give inf · 0.
    relu = Relu()
    relu.forward(np.array([-1.0, 0.0, 2.0]))
    dx = relu.backward(np.array([np.inf, -np.inf, 3.0]))
    np.testing.assert_array_equal(dx, [0.0, 0.0, 3.0])


def test_sigmoid_is_finite_at_extremes():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    y = sigmoid(x)  # warnings are errors in this suite: an overflow would fail here
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    # relative precision kept in the far tail: sigmoid(-40) = 1 / (1 + e^40)
    assert y[1] == pytest.approx(1.0 / (1.0 + np.exp(40.0)), rel=1e-14)
    layer = Sigmoid()
    layer.forward(x)
    assert np.all(np.isfinite(layer.backward(np.ones_like(x))))


@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [
        ((1, 3), (3, 2)),
        ((4, 6), (6, 5)),
        ((4, 3, 2), (6, 5)),
        ((2, 2, 2, 2), (8, 3)),
        ((6,), (6, 4)),
    ],
)
def test_affine_gradients_match_numerical(x_shape, w_shape):
    rng = np.random.default_rng(3)
    layer = Affine(rand(rng, *w_shape), rand(rng, w_shape[1]))
    report = check_layer(layer, rand(rng, *x_shape))
    assert [c.name for c in report.checks] == ["input 0", "W", "b"]
    assert report.passed, report.format()


def test_affine_dx_has_input_shape():
    rng = np.random.default_rng(4)
    layer = Affine(rand(rng, 12, 5), rand(rng, 5))
    x = rand(rng, 3, 1, 3, 4)
    assert layer.forward(x).shape == (3, 5)
    assert layer.backward(np.ones((3, 5))).shape == x.shape


def test_affine_dW_is_x_transpose_times_dY_not_the_seed_typo():
    # Square sizes make the seed's typo dW = Wᵀ·dY shape-correct, so only values can tell.
    rng = np.random.default_rng(5)
    x, W, b, dY = rand(rng, 3, 3), rand(rng, 3, 3), rand(rng, 3), rand(rng, 3, 3)
    layer = Affine(W, b)
    layer.forward(x)
    layer.backward(dY)
    np.testing.assert_allclose(layer.dW, x.T @ dY, rtol=1e-14)
    assert not np.allclose(layer.dW, W.T @ dY)
    np.testing.assert_allclose(layer.db, dY.sum(axis=0), rtol=1e-14)


def test_affine_wrong_input_width_names_layer_and_both_shapes():
    layer = Affine(np.zeros((784, 50)), np.zeros(50), name="Affine1")
    with pytest.raises(ShapeError) as info:
        layer.forward(np.zeros((10, 783)))
    message = str(info.value)
    assert "Affine1" in message and "(10, 783)" in message and "(784, 50)" in message


def test_affine_rejects_empty_batch_and_bad_dout():
    layer = Affine(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ShapeError):
        layer.forward(np.zeros((0, 3)))
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"dout has shape \(4, 3\)"):
        layer.backward(np.zeros((4, 3)))


def test_affine_rejects_mismatched_parameters():
    with pytest.raises(ShapeError):
        Affine(np.zeros((3, 2)), np.zeros(3))


@pytest.mark.parametrize("layer_type", [MulLayer, AddLayer, Relu, Sigmoid])
def test_backward_before_forward_is_a_state_error(layer_type):
    with pytest.raises(StateError, match="before forward"):
        layer_type().backward(np.ones(3))


def test_affine_backward_before_forward_is_a_state_error():
    with pytest.raises(StateError):
        Affine(np.zeros((3, 2)), np.zeros(2)).backward(np.ones((1, 2)))


def test_affine_forward_that_raises_leaves_its_saved_input_consistent():
    # The saved x and its original shape go together, so backward after a failed
    # forward still returns a dX of the saved input's shape instead of crashing.
    layer = Affine(np.full((12, 2), 1e300), np.zeros(2))
    layer.forward(np.ones((2, 3, 4)))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        layer.forward(np.full((5, 12), 1e300))
    assert layer.backward(np.zeros((5, 2))).shape == (5, 12)


@pytest.mark.parametrize(
    ("make", "inputs"),
    [
        (MulLayer, (np.ones((2, 3)) * 2, np.arange(6.0).reshape(2, 3))),
        (AddLayer, (np.ones((2, 3)), np.arange(3.0))),
        (Relu, (np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]),)),
        (Sigmoid, (np.arange(6.0).reshape(2, 3) - 3,)),
        (lambda: Affine(np.ones((3, 3)), np.zeros(3)), (np.arange(6.0).reshape(2, 3),)),
    ],
)
def test_backward_changes_neither_dout_nor_saved_arrays(make, inputs):
    layer = make()
    inputs_before = [x.copy() for x in inputs]
    out = layer.forward(*inputs)
    saved_before = {k: np.copy(v) for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    dout = np.full(np.shape(out), 0.5)
    dout_before = dout.copy()
    layer.backward(dout)
    layer.backward(dout)
    np.testing.assert_array_equal(dout, dout_before)
    for x, before in zip(inputs, inputs_before):
        np.testing.assert_array_equal(x, before)
    for key, before in saved_before.items():
        if key not in ("dW", "db"):
            np.testing.assert_array_equal(getattr(layer, key), before)


def test_inputs_that_are_not_real_numbers_are_refused():
    from chainrule.errors import DTypeError

    with pytest.raises(DTypeError, match=r"Relu: input must hold real numbers, got dtype <U"):
        Relu().forward(np.array(["1", "2"]))
    with pytest.raises(DTypeError, match=r"Affine1: input .* complex128"):
        Affine(np.ones((2, 2)), np.zeros(2), name="Affine1").forward(np.ones((1, 2), complex))


def test_shapes_that_do_not_broadcast_name_both():
    with pytest.raises(ShapeError, match=r"MulLayer: x of shape \(2, 3\) and y of shape \(4,\)"):
        MulLayer().forward(np.ones((2, 3)), np.ones(4))
    layer = AddLayer()
    layer.forward(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ShapeError, match=r"dout has shape \(3,\), expected \(2, 3\)"):
        layer.backward(np.ones(3))
