"""SoftmaxWithLoss: values from the definition, stability, label forms, dout, errors."""

import math

import numpy as np
import pytest

from chainrule.errors import LabelError, ShapeError, StateError
from chainrule.gradcheck import check_layer
from chainrule.losses import SoftmaxWithLoss, cross_entropy_error, log_softmax, softmax


def reference_loss(x, labels):
    """Mean cross-entropy written out from the definition with math.exp/math.log."""
    total = 0.0
    for row, label in zip(x, labels):
        total += -(row[label] - math.log(sum(math.exp(v) for v in row)))
    return total / len(x)


def test_loss_matches_definition():
    x = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    labels = np.array([1, 2])
    assert SoftmaxWithLoss().forward(x, labels) == pytest.approx(
        reference_loss(x, labels), rel=1e-14
    )


def test_uniform_logits_give_log_of_class_count():
    assert SoftmaxWithLoss().forward(np.zeros((4, 10)), np.arange(4)) == pytest.approx(math.log(10))


def test_integer_and_one_hot_labels_agree():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    a, b = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert a.forward(x, labels) == pytest.approx(b.forward(x, np.eye(4)[labels]), rel=1e-14)
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=1e-14)


def test_backward_is_softmax_minus_one_hot_over_n_times_dout():
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 4)), np.array([2, 0, 3])
    layer = SoftmaxWithLoss()
    layer.forward(x, labels)
    expected = (softmax(x) - np.eye(4)[labels]) / 3
    np.testing.assert_allclose(layer.backward(), expected, rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dout=2.5), 2.5 * expected, rtol=1e-13)


@pytest.mark.parametrize("shape", [(1, 3), (6, 10)])
def test_gradient_matches_numerical_for_both_label_forms(shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    labels = rng.integers(0, shape[1], shape[0])
    assert check_layer(SoftmaxWithLoss(), x, labels).passed
    soft = rng.random(shape)
    assert check_layer(SoftmaxWithLoss(), x, soft / soft.sum(axis=1, keepdims=True)).passed


def test_soft_labels_not_summing_to_one_have_the_right_gradient():
    rng = np.random.default_rng(3)
    report = check_layer(SoftmaxWithLoss(), rng.standard_normal((4, 5)), rng.random((4, 5)))
    assert report.passed, report.format()


def test_single_sample():
    x, label = np.array([1.0, 2.0, 0.5]), 1
    layer = SoftmaxWithLoss()
    assert layer.forward(x, label) == pytest.approx(reference_loss([x], [label]), rel=1e-14)
    dx = layer.backward()
    assert dx.shape == (3,)
    np.testing.assert_allclose(dx, softmax(x) - np.eye(3)[label], rtol=1e-14)
    assert SoftmaxWithLoss().forward(x, np.eye(3)[label]) == pytest.approx(layer.loss)


def test_huge_logits_are_finite():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, np.array([1, 0]))
    # row 1: the label's logit is 2e4 below the max, so its loss is 2e4; row 2: log 3
    assert loss == pytest.approx((2e4 + math.log(3)) / 2, rel=1e-12)
    assert np.all(np.isfinite(layer.backward()))
    assert np.all(np.isfinite(softmax(x))) and np.all(np.isfinite(log_softmax(x)))


def test_no_epsilon_bias_when_prediction_is_certain():
    # With the book's log(y + 1e-7) this would be -log(1 + 1e-7) < 0, not 0.
    assert SoftmaxWithLoss().forward(np.array([[800.0, 0.0]]), np.array([0])) == 0.0


def test_cross_entropy_error_takes_probabilities_as_the_books_does():
    # The learner's cross_entropy_error(softmax(x), t) applies softmax once: the loss
    # equals the fused node's on the logits, for integer and one-hot labels.
    x, labels = np.array([[0.0, 1.0], [2.0, -1.0]]), np.array([1, 0])
    expected = reference_loss(x, labels)
    assert cross_entropy_error(softmax(x), labels) == pytest.approx(expected, rel=1e-12)
    assert cross_entropy_error(softmax(x), np.eye(2)[labels]) == pytest.approx(expected, rel=1e-12)
    # The book's example (chapter 4): y = 0.6 for the right class gives -log 0.6.
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    assert cross_entropy_error(y, np.int64(2)) == pytest.approx(-np.log(0.6), rel=1e-12)
    # A probability of exactly 0 for the label gives a large, finite loss, not inf.
    assert np.isfinite(cross_entropy_error(y, np.int64(3)))


@pytest.mark.parametrize(
    ("t", "error", "words"),
    [
        (np.array([0, 5]), LabelError, "label 5 at index 1"),
        (np.array([0, -1]), LabelError, "label -1"),
        (np.array([0.0, 1.0]), LabelError, "integers"),
        (np.array([True, False]), LabelError, "integers"),
        (np.array([0, 1, 2]), ShapeError, "(3,)"),
        (np.zeros((2, 4)), ShapeError, "(2, 4)"),
    ],
)
def test_bad_labels_are_explained(t, error, words):
    with pytest.raises(error) as info:
        SoftmaxWithLoss().forward(np.zeros((2, 3)), t)
    assert words in str(info.value)


def test_empty_batch_and_backward_first():
    with pytest.raises(ShapeError):
        SoftmaxWithLoss().forward(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(StateError):
        SoftmaxWithLoss().backward()


def test_backward_does_not_change_saved_softmax():
    layer = SoftmaxWithLoss()
    layer.forward(np.array([[1.0, 2.0]]), np.array([0]))
    y = layer.y.copy()
    layer.backward()
    np.testing.assert_array_equal(layer.y, y)


def test_a_column_of_class_indices_is_taken_as_the_indices():
    # The book's chapter 7 gradient check labels its one sample T = np.array([1]).reshape((1, 1)).
    from chainrule.losses import class_indices

    rng = np.random.default_rng(11)
    x, labels = rng.standard_normal((4, 3)), np.array([2, 0, 1, 2])
    flat, column = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert column.forward(x, labels.reshape(4, 1)) == flat.forward(x, labels)
    np.testing.assert_array_equal(column.backward(), flat.backward())
    with pytest.raises(LabelError, match="label 3 at index 1"):
        SoftmaxWithLoss().forward(x, np.array([[0], [3], [1], [1]]))
    # (N, 1) with one class is one-hot
    assert SoftmaxWithLoss().forward(np.zeros((2, 1)), np.ones((2, 1))) == 0.0
    np.testing.assert_array_equal(class_indices(labels.reshape(4, 1), 3), labels)
    np.testing.assert_array_equal(class_indices(np.eye(3)[labels], 3), labels)
    np.testing.assert_array_equal(class_indices(labels, 3), labels)
