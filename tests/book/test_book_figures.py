"""The book's figures rebuilt from primitive nodes: Figure 5-19's sigmoid, Figure 5-25's
Affine and Appendix A's Softmax-with-Loss give the fused layers' gradients, and the trace
and the command line show them."""

import re

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.examples import (
    EXAMPLES,
    FUSED,
    affine_graph,
    fused_affine_graph,
    fused_sigmoid_graph,
    fused_softmax_with_loss_graph,
    sigmoid_graph,
    softmax_with_loss_graph,
)
from chainrule.explain import explain, explain_example
from chainrule.formatting import format_number
from chainrule.graph import Graph
from chainrule.layers import Affine, Sigmoid, SoftmaxWithLoss

rng = np.random.default_rng(0)


@pytest.mark.parametrize("x", [1.0, -3.0, 0.0, 12.5])
def test_the_sigmoid_of_four_primitive_nodes_is_the_sigmoid_layers(x):
    g = sigmoid_graph(x)
    assert [type(n.layer).__name__ for n in g.nodes] == [
        "MulLayer",
        "Exp",
        "AddLayer",
        "Reciprocal",
    ]
    fused = fused_sigmoid_graph(x)
    y = fused["y"].data
    assert g["y"].data == pytest.approx(y, rel=1e-15)
    assert g["x"].grad == pytest.approx(fused["x"].grad, rel=1e-12)
    assert g["x"].grad == pytest.approx(y * (1 - y), rel=1e-12)


def test_a_learners_sigmoid_typed_as_numpy_spells_it():
    layer, x = Sigmoid(), rng.standard_normal((3, 4))
    out = layer.forward(x)
    g = Graph()
    v = g.input(x, "x")
    y = 1 / (1 + (-v).exp())
    dout = rng.standard_normal((3, 4))
    y.backward(dout)
    np.testing.assert_allclose(y.data, out, rtol=1e-14)
    np.testing.assert_allclose(v.grad, layer.backward(dout), rtol=1e-12)


def test_x_dot_w_plus_b_is_the_affine_layers():
    X, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    dY = rng.standard_normal((5, 3))
    layer = Affine(W, b)
    out, dX = layer.forward(X), None
    dX = layer.backward(dY)
    g = Graph()
    Xv, Wv, bv = g.input(X, "X"), g.input(W, "W"), g.input(b, "b")
    Y = Xv @ Wv + bv
    Y.backward(dY)
    np.testing.assert_allclose(Y.data, out, rtol=1e-14)
    for ours, theirs in ((Xv.grad, dX), (Wv.grad, layer.dW), (bv.grad, layer.db)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_the_books_affine_example():
    g, fused = affine_graph(), fused_affine_graph()
    assert [type(n.layer).__name__ for n in g.nodes] == ["Dot", "AddLayer"]
    np.testing.assert_array_equal(g["b"].grad, [5, 7, 9])  # the book's dB
    layer = fused.nodes[0]
    np.testing.assert_allclose(g["W"].grad, layer.param_grads["dW"], rtol=1e-14)
    np.testing.assert_allclose(g["X"].grad, fused["X"].grad, rtol=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_appendix_a_softmax_with_loss_gives_y_minus_t(seed):
    r = np.random.default_rng(seed)
    a, t = r.standard_normal(4) * 3, np.eye(4)[r.integers(0, 4)]
    g = softmax_with_loss_graph(a, t)
    layer = SoftmaxWithLoss()
    loss = layer.forward(a, t)
    assert g["L"].data == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(g["a"].grad, layer.backward(), rtol=1e-10, atol=1e-15)
    y = np.exp(a) / np.exp(a).sum()
    np.testing.assert_allclose(g["a"].grad, y - t, rtol=1e-10, atol=1e-15)
    assert g["t"].grad is None  # the labels are a constant
    np.testing.assert_allclose(fused_softmax_with_loss_graph(a, t)["a"].grad, y - t, rtol=1e-12)


def test_the_sigmoid_trace_ends_in_the_books_y_times_one_minus_y():
    text = explain_example("sigmoid")
    y = 1 / (1 + np.exp(-1.0))
    local = format_number(y * (1 - y))
    assert "    v₃ = v₂ + 1 = 0.367879 + 1 = 1.36788\n" in text
    assert "dx′ = dout · (−y²) = 1 · (-0.534447) = -0.534447" in text
    assert "Its gradients equal those of the nodes above" in text
    assert text.rstrip().endswith(f"dx = dout · y(1 − y) = 1 · {local} = {local}")


def test_the_affine_trace_shows_shapes_and_the_books_db():
    text = explain_example("affine")
    assert "Start: ∂L/∂Y = (2×3)" in text
    assert "dX (2×2) = dout (2×3) · Wᵀ (3×2)" in text
    assert "dW (2×3) = Xᵀ (2×2) · dout (2×3)" in text
    assert "to b               dy (3) = dout (2×3) · 1 = [5, 7, 9]" in text
    assert "db (3) = Σ_rows dout (2×3) = [5, 7, 9]" in text


def test_the_softmax_with_loss_trace_ends_in_y_minus_t():
    text = explain_example("softmax-with-loss")
    assert "    y = exp(a) × v₁ = " in text and "    L = v₃ × -1 = " in text
    # The unnamed values count v₁, v₂, v₃ with no gap where one got a name (y).
    assert "    v₂ = t × log y = " in text and "v₄" not in text
    assert re.search(r"Its gradients equal .*\(largest difference: a ", text)
    assert text.rstrip().endswith("dx (3) = dout · (y − t) / N = [0.0182, 0.245, -0.263]")


def test_a_fused_layer_that_disagrees_is_called_out():
    wrong = fused_sigmoid_graph(1.0)
    wrong["x"].grad = 0.2
    assert "Its gradients DIFFER from those" in explain(sigmoid_graph(), same_as=wrong)


@pytest.mark.parametrize("name", FUSED)
def test_the_command_line_draws_and_explains_each_figure(name, capsys):
    assert name in EXAMPLES
    assert main(["explain", name]) == 0
    assert "The same in one node" in capsys.readouterr().out
    assert main(["graph", name]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph") and ("Figure" in dot or "Appendix" in dot)


def test_the_figures_take_no_network_flags(usage_error):
    assert "sigmoid, a book's figure without a network" in usage_error(
        ["explain", "sigmoid", "--hidden", "3"]
    )


def test_the_affine_trace_writes_its_small_matrices_whole():
    text = explain_example("affine")
    # The book's numbers: X = [[1, 2], [3, 4]], W = [[.1, .2, .3], [.4, .5, .6]], and
    # dW = Xᵀ · dY = [[1, 3], [2, 4]] · [[1, 2, 3], [4, 5, 6]] = [[13, 17, 21], [18, 24, 30]].
    assert "    X = (2×2) [[1, 2],\n               [3, 4]]\n" in text
    assert "    W = (2×3) [[0.1, 0.2, 0.3],\n               [0.4, 0.5, 0.6]]\n" in text
    dw = "dW (2×3) = Xᵀ (2×2) · dout (2×3) = [[13, 17, 21],\n"
    assert dw in text and "\n" + " " * 59 + "[18, 24, 30]]\n" in text
    assert "min" not in text and "[1, 2, 3, 4]" not in text
    # The value named "X · W" is written in parentheses where it is differentiated.
    assert "dout = ∂L/∂(X · W) = " in text and "∂L/∂X · W" not in text


def test_every_primed_letter_is_named_and_the_prime_explained_once():
    text = explain_example("sigmoid")
    assert text.count("A letter with a prime (x′) is a node's own letter") == 1
    blocks = {block.split(" ", 1)[0]: block for block in text.split("\n\n") if block[:1] == "["}
    # Node [3] is v₂ = exp(v₁): its y′ is v₂; node [4] is v₁ = x × -1: its y′ is the -1.
    assert "    where              y′ is v₂, x′ is v₁\n" in blocks["[3]"]
    assert "    where              y′ is -1\n" in blocks["[4]"]
    assert "where" not in explain_example("apple")  # no primes, no row
