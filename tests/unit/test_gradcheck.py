"""The gradient check itself: it passes correct code, fails wrong code, handles ReLU kinks."""

import numpy as np
import pytest

from chainrule import TwoLayerNet
from chainrule.gradcheck import check_gradients, numerical_gradient, relative_error


def mnist_shaped(seed, samples=3):
    rng = np.random.default_rng(seed)
    return rng.random((samples, 784)), rng.integers(0, 10, samples)


def test_numerical_gradient_of_a_known_function():
    x = np.array([3.0, -1.0, 0.5])
    grad = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(grad, 3 * np.array([3.0, -1.0, 0.5]) ** 2, rtol=1e-7)
    np.testing.assert_array_equal(x, [3.0, -1.0, 0.5])  # restored exactly


def test_relative_error_does_not_blow_up_on_near_zero_entries():
    backprop = np.array([1.0, 1e-20])
    numerical = np.array([1.0, 3e-20])
    assert relative_error(backprop, numerical)[1] < 1e-19


def test_books_two_layer_net_passes_in_float64():
    net = TwoLayerNet(784, 50, 10, dtype=np.float64, seed=0)
    report = check_gradients(net, *mnist_shaped(0))
    assert [c.name for c in report.checks] == ["W1", "b1", "W2", "b2"]
    assert all(c.rel_error <= 1e-6 for c in report.checks), report.format()
    # the book reports mean absolute differences of 1e-10 to 1e-13
    assert all(c.mean_abs_error < 1e-9 for c in report.checks)
    assert "PASS" in report.format() and "relative error = max|" in report.format()


def test_a_wrong_gradient_fails():
    net = TwoLayerNet(20, 6, 3, dtype=np.float64, seed=0)
    right = net.gradient

    def slightly_wrong(x, t):
        grads = right(x, t)
        return {**grads, "b1": grads["b1"] * 1.001}

    net.gradient = slightly_wrong
    rng = np.random.default_rng(0)
    report = check_gradients(net, rng.random((3, 20)), rng.integers(0, 3, 3))
    assert not report.passed
    assert [c.name for c in report.checks if not c.passed] == ["b1"]
    assert "FAIL: b1" in report.format()


def put_preactivation_on_kink(net, x, unit, offset):
    """Shift b1 so that sample 0's pre-activation at ``unit`` is ``offset`` (tiny)."""
    pre = x[0] @ net.params["W1"][:, unit] + net.params["b1"][unit]
    net.params["b1"][unit] += offset - pre


def test_relu_kink_is_detected_and_stepped_around():
    net = TwoLayerNet(784, 20, 10, dtype=np.float64, seed=1)
    x, t = mnist_shaped(1)
    put_preactivation_on_kink(net, x, unit=3, offset=3e-5)  # within h = 1e-4 of the kink
    # The plain central difference is wrong at that entry: the scenario is real.
    naive = net.numerical_gradient(x, t)["b1"]
    assert relative_error(net.gradient(x, t)["b1"], naive)[1] > 1e-3
    report = check_gradients(net, x, t)
    b1 = next(c for c in report.checks if c.name == "b1")
    assert b1.remeasured >= 1 and b1.excluded == 0
    assert report.passed, report.format()


def test_entry_exactly_on_the_kink_is_excluded_not_failed():
    net = TwoLayerNet(10, 4, 3, dtype=np.float64, seed=2)
    rng = np.random.default_rng(2)
    x, t = rng.random((2, 10)), rng.integers(0, 3, 2)
    put_preactivation_on_kink(net, x, unit=1, offset=0.0)
    report = check_gradients(net, x, t)
    assert report.passed, report.format()
    assert sum(c.excluded for c in report.checks) >= 1


@pytest.mark.parametrize("seed", range(6))
def test_no_false_failure_with_many_near_kink_units(seed):
    # Tiny weights and large biases of both signs put many pre-activations near 0.
    net = TwoLayerNet(30, 40, 5, weight_init_std=1e-3, dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed)
    net.params["b1"][:] = rng.uniform(-2e-4, 2e-4, 40)
    x, t = rng.random((3, 30)), rng.integers(0, 5, 3)
    report = check_gradients(net, x, t)
    assert report.passed, report.format()


def test_float32_network_gets_a_note():
    net = TwoLayerNet(5, 3, 2, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    report = check_gradients(net, rng.random((2, 5)), rng.integers(0, 2, 2), tolerance=1.0)
    assert "float64" in report.format()


def header(report):
    return next(line.split() for line in str(report).splitlines() if line.startswith("param"))


def test_the_report_prints_as_its_table_and_has_a_kink_column_only_with_relu():
    from chainrule import MultiLayerNet
    from chainrule.gradcheck import check_layer
    from chainrule.layers import Affine

    rng = np.random.default_rng(0)
    x, t = rng.random((2, 6)), rng.integers(0, 3, 2)
    report = check_gradients(TwoLayerNet(6, 4, 3, dtype=np.float64, seed=0), x, t)
    assert str(report) == repr(report) == report.format()
    assert "ParamCheck(" not in repr(report) and report.kinks
    assert header(report)[-2:] == ["kink", "result"]
    sigmoid = MultiLayerNet(6, [4], 3, activation="sigmoid", dtype=np.float64, seed=0)
    for plain in (
        check_gradients(sigmoid, x, t),
        check_layer(Affine(rng.random((3, 2)), rng.random(2)), rng.random((4, 3))),
    ):
        assert not plain.kinks and "kink" not in str(plain)
        assert header(plain)[-3:] == ["rel", "err", "result"]
