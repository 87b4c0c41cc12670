"""The recorded graph: fan-out accumulation, order, deep chains, the book's examples."""

import math

import numpy as np
import pytest

from chainrule.errors import DTypeError, StateError
from chainrule.examples import (
    buy_apple,
    buy_apple_graph,
    buy_apple_orange,
    buy_apple_orange_graph,
)
from chainrule.graph import Graph
from chainrule.layers import Affine, MulLayer, Relu, SoftmaxWithLoss


def test_value_added_to_itself_gets_gradient_two():
    g = Graph()
    a = g.input(3.0, "a")
    b = a + a
    b.backward()
    assert a.grad == 2.0


def test_value_used_by_two_nodes_gets_the_sum():
    g = Graph()
    a, x, y = g.input(2.0, "a"), g.input(5.0, "x"), g.input(7.0, "y")
    out = a * x + a * y  # d out / d a = x + y
    out.backward()
    assert a.grad == 12.0 and x.grad == 2.0 and y.grad == 2.0


def test_square_through_a_mul_node():
    g = Graph()
    a = g.input(np.array([1.0, -2.0, 3.0]), "a")
    (a * a).backward()
    np.testing.assert_array_equal(a.grad, [2.0, -4.0, 6.0])


def test_diamond_graph_with_arrays_and_relu():
    g = Graph()
    x = g.input(np.array([-1.0, 2.0]), "x")
    h = x.relu()
    out = h * x + h  # d/dx = relu'(x)·x + relu(x) + relu'(x)
    out.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0 + 2.0 + 1.0])


def test_values_not_upstream_of_the_output_get_no_gradient():
    g = Graph()
    a, b = g.input(1.0, "a"), g.input(2.0, "b")
    used = a * 3.0
    b * 4.0
    used.backward()
    assert a.grad == 3.0 and b.grad is None


def test_backward_twice_gives_the_same_gradients():
    g = buy_apple_orange_graph()
    first = {v.name: v.grad for v in g.values}
    g.backward(g["price"])
    assert {v.name: v.grad for v in g.values} == first


def test_ten_thousand_node_chain_needs_no_recursion():
    g = Graph()
    x = g.input(1.0, "x")
    value = x
    for _ in range(10_000):
        value = value * 1.0001
    value.backward()
    assert len(g) == 10_000
    assert x.grad == pytest.approx(1.0001**10_000, rel=1e-9)


class _CountingList(list):
    """A list that counts every pass over it and every search in it."""

    scans = 0

    def __iter__(self):
        _CountingList.scans += 1
        return super().__iter__()

    def __contains__(self, item):
        _CountingList.scans += 1
        return super().__contains__(item)

    def index(self, *args):
        _CountingList.scans += 1
        return super().index(*args)


def test_recording_a_long_chain_never_scans_the_values_recorded_before():
    # Linear by construction: naming a new value is a table lookup, not a pass over every
    # value so far (which made a 100,000-node chain take minutes). The probe counts the
    # passes over the graph's values while 100,000 nodes, named and unnamed, are recorded.
    g = Graph()
    g.values = _CountingList()
    _CountingList.scans = 0
    value = g.input(1.0, "x")
    for k in range(100_000):
        value = value * 1.0 if k % 10 else (value + 0.0).named(f"s{k}")
    assert _CountingList.scans == 0
    assert len(g) == 100_000 and value.name == "v₉₀₀₀₀" and g["s99990"].node is not None


def test_an_input_must_be_numbers():
    g = Graph()
    for bad in ("abc", [[1, 2], [3]], {"a": 1}, 1j):
        with pytest.raises(DTypeError) as error:
            g.input(bad, "x")
        assert "\n" not in str(error.value) and "'x'" in str(error.value)
    with pytest.raises(DTypeError):
        g.input(1.0, "y") * "abc"  # a constant too
    assert [v.name for v in g.values] == ["y"]


def test_a_notebook_cell_that_makes_an_input_can_run_again():
    g = Graph()
    x = g.input(1.0, "x")
    x = g.input(2.0, "x")  # the cell again, before anything uses x: the new x replaces it
    y = (x * 3).named("y")
    y = (x * 3 + 1).named("y")  # a result nothing uses yet is replaced, its unnamed part too
    y.backward()
    assert [v.name for v in g.values if not v.constant] == ["x", "v₁", "y"]
    assert len(g) == 2 and g["y"].data == 7 and x.grad == 3


def test_a_name_that_something_depends_on_is_not_replaced():
    g = Graph()
    old = g.input(1.0, "x")
    (old * 2).named("y")
    with pytest.raises(StateError, match="already used by a value that 'y' depends on"):
        g.input(2.0, "x")
    assert [v.name for v in g.values if not v.constant] == ["x", "y"]  # nothing half-added
    with pytest.raises(StateError):
        old.exp(name="x")
    assert len(g) == 1
    h = Graph()
    stale = h.input(1.0, "x")
    h.input(2.0, "x")
    with pytest.raises(StateError, match="replaced"):
        stale * 2


def test_a_layer_object_cannot_be_two_nodes():
    g = Graph()
    layer = MulLayer()
    g.apply(layer, g.input(1.0), g.input(2.0))
    with pytest.raises(StateError, match="new layer object"):
        g.apply(layer, g.input(1.0), g.input(2.0))


def test_loss_node_leaves_labels_without_gradient():
    rng = np.random.default_rng(0)
    g = Graph()
    x = g.input(rng.standard_normal((4, 3)), "x")
    affine = Affine(rng.standard_normal((3, 2)), np.zeros(2))
    loss = g.apply(SoftmaxWithLoss(), g.apply(Relu(), g.apply(affine, x)), np.array([0, 1, 1, 0]))
    loss.backward()
    assert g.values[-2].grad is None  # the labels
    assert x.grad.shape == (4, 3) and affine.dW.shape == (3, 2)


def test_buy_apple_by_hand_matches_the_book():
    result = buy_apple()
    assert result["price"] == pytest.approx(220)
    assert result["dapple"] == pytest.approx(2.2)
    assert result["dapple_num"] == pytest.approx(110)
    assert result["dtax"] == pytest.approx(200)


def test_buy_apple_orange_by_hand_matches_the_book():
    result = buy_apple_orange()
    expected = {
        "price": 715,
        "dapple_num": 110,
        "dapple": 2.2,
        "dorange": 3.3,
        "dorange_num": 165,
        "dtax": 650,
    }
    assert result == pytest.approx(expected)


def test_book_examples_agree_between_hand_chain_and_graph():
    g = buy_apple_graph()
    hand = buy_apple()
    assert g["price"].data == hand["price"]
    assert (g["apple"].grad, g["apple count"].grad, g["tax"].grad) == pytest.approx(
        (hand["dapple"], hand["dapple_num"], hand["dtax"])
    )
    g = buy_apple_orange_graph()
    assert g["price"].data == pytest.approx(715)
    got = [g[name].grad for name in ("apple count", "apple", "orange", "orange count", "tax")]
    assert got == pytest.approx([110, 2.2, 3.3, 165, 650])
    assert [n.op for n in g] == ["MulLayer", "MulLayer", "AddLayer", "MulLayer"]


def test_graph_gradient_matches_finite_difference_of_the_same_function():
    def price(apple, count, orange, orange_count, tax):
        return (apple * count + orange * orange_count) * tax

    args = [100.0, 2.0, 150.0, 3.0, 1.1]
    g = buy_apple_orange_graph(*args)
    names = ["apple", "apple count", "orange", "orange count", "tax"]
    h = 1e-5
    for i, name in enumerate(names):
        plus, minus = list(args), list(args)
        plus[i] += h
        minus[i] -= h
        numerical = (price(*plus) - price(*minus)) / (2 * h)
        assert g[name].grad == pytest.approx(numerical, rel=1e-7)


def test_unknown_name_is_a_key_error():
    with pytest.raises(KeyError):
        buy_apple_graph()["banana"]


def test_sigmoid_node_in_a_graph():
    g = Graph()
    x = g.input(0.5, "x")
    y = x.sigmoid()
    y.backward()
    s = 1 / (1 + math.exp(-0.5))
    assert x.grad == pytest.approx(s * (1 - s), rel=1e-14)


def test_backward_records_on_each_node_what_it_passed_back():
    g = buy_apple_graph()
    apple_price, price = g.nodes
    assert g.seed is g["price"]
    assert price.grads == (1.1, 200) and price.local_values == (1.1, 200)
    assert apple_price.grads == pytest.approx((2.2, 110))
    assert apple_price.local_values == (2, 100)
    assert price.param_grads == {} and price.param_shapes == {}


def test_the_record_is_a_copy_that_training_cannot_change():
    rng = np.random.default_rng(0)
    g = Graph()
    affine = Affine(rng.standard_normal((3, 2)), np.zeros(2))
    loss = g.apply(
        SoftmaxWithLoss(), g.apply(affine, g.input(rng.random((4, 3)), "x")), [0, 1, 1, 0]
    )
    loss.backward()
    node = g.nodes[0]
    assert node.param_shapes == {"W": (3, 2), "b": (2,)}
    np.testing.assert_array_equal(node.local_values[0], affine.W.T)
    np.testing.assert_array_equal(node.param_grads["dW"], affine.dW)
    kept = {"W.T": affine.W.T.copy(), "dW": affine.dW.copy(), "db": affine.db.copy()}
    affine.W -= 1.0  # an optimiser's step, in place
    affine.dW += 1.0
    affine.db += 1.0
    np.testing.assert_array_equal(node.local_values[0], kept["W.T"])
    np.testing.assert_array_equal(node.param_grads["dW"], kept["dW"])
    np.testing.assert_array_equal(node.param_grads["db"], kept["db"])
    assert g.nodes[1].grads[0].shape == (4, 2) and len(g.nodes[1].grads) == 1  # no label grad


def test_a_second_backward_forgets_the_first_record():
    g = Graph()
    a, b = g.input(2.0, "a"), g.input(3.0, "b")
    first, second = a * b, a + b
    first.backward()
    assert first.node.grads == (3.0, 2.0) and second.node.grads is None
    second.backward()
    assert g.seed is second
    assert first.node.grads is None and first.node.local_values is None
    assert second.node.grads == (1.0, 1.0)


def test_nodes_read_the_layer_protocol_with_defaults():
    class Square:  # forward and backward only: no symbol, formula or local
        def forward(self, u):
            self.u = u
            return u * u

        def backward(self, dout):
            return 2 * self.u * dout

    g = Graph()
    node = g.apply(Square(), g.input(3.0, "a")).node
    assert (node.symbol, node.formula, node.local, node.param_rules) == ("Square", "", (), ())
    assert node.input_letters == ("u",) and node.output_letter == "out" and not node.is_loss
    mul = (g["a"] * 2.0).node
    assert mul.input_letters == ("x", "y") and mul.output_letter == "z" and mul.symbol == "×"
    loss = g.apply(SoftmaxWithLoss(), g.input(np.zeros(3)), 1).node
    assert loss.is_loss and loss.input_letters == ("x", "t")
    affine = g.apply(Affine(np.ones((3, 2)), np.zeros(2), name="Affine7"), g.input(np.ones(3)))
    assert affine.node.input_letters == ("X",) and affine.node.title == "Affine7"
