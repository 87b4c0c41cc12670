"""The primitive nodes: NumPy's spelling on values, float64 gradient checks, constants,
names, and values of two graphs kept apart."""

import numpy as np
import pytest

from chainrule.errors import ShapeError, StateError
from chainrule.explain import explain
from chainrule.gradcheck import check_layer
from chainrule.graph import Graph
from chainrule.primitives import Div, Dot, Exp, Log, Neg, Pow, Reciprocal, Sub, Sum

rng = np.random.default_rng(0)
POSITIVE = rng.uniform(0.5, 2.0, (3, 4))

# Each node on float64 inputs of broadcasting shapes; a check with a wrong backward fails.
CASES = {
    "neg": (Neg, [rng.standard_normal((3, 4))]),
    "sub": (Sub, [rng.standard_normal((3, 4)), rng.standard_normal(4)]),
    "sub-column": (Sub, [rng.standard_normal((3, 1)), rng.standard_normal((3, 4))]),
    "div": (Div, [rng.standard_normal((3, 4)), POSITIVE]),
    "div-broadcast": (Div, [rng.standard_normal(4), POSITIVE[:, :1]]),
    "reciprocal": (Reciprocal, [POSITIVE]),
    "square": (lambda: Pow(2), [rng.standard_normal((3, 4))]),
    "cube": (lambda: Pow(3), [rng.standard_normal(5)]),
    "sqrt": (lambda: Pow(0.5), [POSITIVE]),
    "inverse": (lambda: Pow(-1), [POSITIVE]),
    "exp": (Exp, [rng.standard_normal((3, 4))]),
    "log": (Log, [POSITIVE]),
    "sum-all": (Sum, [rng.standard_normal((3, 4))]),
    "sum-rows": (lambda: Sum(axis=0), [rng.standard_normal((3, 4))]),
    "sum-kept": (lambda: Sum(axis=1, keepdims=True), [rng.standard_normal((3, 4))]),
    "sum-axes": (lambda: Sum(axis=(0, 2)), [rng.standard_normal((2, 3, 4))]),
    "dot": (Dot, [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]),
    "dot-vector-left": (Dot, [rng.standard_normal(4), rng.standard_normal((4, 2))]),
    "dot-vector-right": (Dot, [rng.standard_normal((3, 4)), rng.standard_normal(4)]),
    "dot-vectors": (Dot, [rng.standard_normal(4), rng.standard_normal(4)]),
    "dot-stack": (Dot, [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2))]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_primitive_passes_a_float64_gradient_check(case):
    make, inputs = CASES[case]
    report = check_layer(make(), *inputs)
    assert len(report.checks) == len(inputs)
    assert report.passed, report.format()


def test_the_check_catches_a_wrong_backward():
    class WrongExp(Exp):
        def backward(self, dout):
            return dout * self.out * 1.001

    assert not check_layer(WrongExp(), rng.standard_normal(3)).passed


def test_values_take_numpys_spelling_with_numbers_and_arrays_on_either_side():
    g = Graph()
    x = g.input(np.array([1.0, 2.0, 4.0]), "x")
    W = g.input(np.arange(6.0).reshape(3, 2), "W")
    cases = {
        "-x": (-x, -x.data),
        "x - 1": (x - 1, x.data - 1),
        "1 - x": (1 - x, 1 - x.data),
        "x / 2": (x / 2, x.data / 2),
        "2 / x": (2 / x, 2 / x.data),
        "1 / x": (1 / x, 1 / x.data),
        "x ** 2": (x**2, x.data**2),
        "x @ W": (x @ W, x.data @ W.data),
        "array @ W": (np.ones(3) @ W, np.ones(3) @ W.data),
        "array - x": (np.ones(3) - x, 1 - x.data),
        "array * x": (np.full(3, 2.0) * x, 2 * x.data),
        "array / x": (np.ones(3) / x, 1 / x.data),
        "exp": (x.exp(), np.exp(x.data)),
        "log": (x.log(), np.log(x.data)),
        "sum": (x.sum(), x.data.sum()),
        "sum rows": (W.sum(axis=0, keepdims=True), W.data.sum(axis=0, keepdims=True)),
    }
    for text, (value, expected) in cases.items():
        assert value.graph is g, text
        np.testing.assert_allclose(value.data, expected, err_msg=text)
    kinds = {type(n.layer).__name__ for n in g.nodes}
    assert kinds == {
        "Neg",
        "Sub",
        "Div",
        "Reciprocal",
        "Pow",
        "Dot",
        "MulLayer",
        "Exp",
        "Log",
        "Sum",
    }


def test_one_over_a_value_is_the_books_one_input_node():
    g = Graph()
    x = g.input(4.0, "x")
    assert type((1 / x).node.layer) is Reciprocal and len(g.nodes[-1].inputs) == 1
    assert type((2 / x).node.layer) is Div


def test_a_quadratic_form_of_primitives_backpropagates():
    g = Graph()
    A = rng.standard_normal((3, 3))
    x = g.input(rng.standard_normal(3), "x")
    ((x @ A) @ x - (x**2).sum() / 2).backward()
    np.testing.assert_allclose(x.grad, (A + A.T) @ x.data - x.data, rtol=1e-12)


def test_broadcast_gradients_are_summed_back_to_each_shape():
    g = Graph()
    x, b = g.input(np.ones((4, 3)), "x"), g.input(np.array([1.0, 2.0, 4.0]), "b")
    (x / b - b).sum().backward()
    assert b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad, -4 / b.data**2 - 4)


def test_constants_are_written_as_numbers_and_get_no_gradient():
    g = Graph()
    x = g.input(2.0, "x")
    y = (x * -1 + 1).named("y")
    y.backward()
    constants = [v for v in g.values if v.constant]
    assert [c.name for c in constants] == ["-1", "1"]
    assert all(c.grad is None for c in constants) and x.grad == -1
    text = explain(g)
    assert "    v₁ = x × -1 = 2 × -1 = -2\n" in text
    assert "    y = v₁ + 1 = -2 + 1 = -1\n" in text
    assert "to -1" not in text and "to 1 " not in text and "∂y/∂-1" not in text
    with pytest.raises(KeyError):
        g["1"]


def test_names_given_when_made_and_after():
    g = Graph()
    x = g.input(3.0, "x")
    e = x.exp(name="e")
    f = (e * x).named("f")
    s = f.sum(name="s")
    assert (g["e"], g["f"], g["s"]) == (e, f, s)
    assert "    f = e × x = " in explain_after(g, s)
    with pytest.raises(StateError, match="already used"):
        x.log().named("e")


def explain_after(g, value):
    value.backward()
    return explain(g)


def test_automatic_names_never_clash_with_a_learners():
    g = Graph()
    x = g.input(1.0, "x")
    a = x.exp()
    assert a.name == "v₁" and a.auto
    b = (a + 1).named("v₁")  # the learner takes the automatic name: the old holder moves on
    assert b.name == "v₁" and a.name != "v₁" and a.auto
    names = [v.name for v in g.values if not v.constant]
    assert len(names) == len(set(names))
    unnamed = g.input(5.0)
    assert unnamed.name not in {"x1", "x2"} and unnamed.name.startswith("v")


def test_values_of_two_graphs_give_an_error_naming_both():
    g, h = Graph(), Graph()
    a, b = g.input(1.0, "apple"), h.input(2.0, "banana")
    for combine in (lambda: a * b, lambda: a - b, lambda: b @ a, lambda: a / b):
        with pytest.raises(StateError) as error:
            combine()
        assert "'apple'" in str(error.value) and "'banana'" in str(error.value)
        assert "another Graph" in str(error.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda x: x**x, "takes a number k"),
        (lambda x: x @ np.ones((4, 2)), "do not multiply"),
        (lambda x: x.sum(axis=3), "Sum: axis 3"),
        (lambda x: x - np.ones(5), "do not broadcast"),
    ],
)
def test_mistakes_raise_chainrules_errors(build, message):
    g = Graph()
    x = g.input(np.ones((2, 3)), "x")
    with pytest.raises((ShapeError, TypeError), match=message):
        build(x)
