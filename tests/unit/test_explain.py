"""The trace: the forward pass, then the backward pass in node order, with the book's
numbers, formulas, shapes and fan-out sums, all from what the graph recorded.

The book's numbers are those of the apple and apple-orange examples in chapter 5 of
"Deep Learning from Scratch".
"""

import re

import numpy as np
import pytest

from chainrule.errors import ArgumentError, StateError
from chainrule.examples import buy_apple_graph, buy_apple_orange_graph
from chainrule.explain import EXAMPLE_NAMES, example_graph, explain, explain_example
from chainrule.formatting import array_stats, format_number, format_shape, summarize
from chainrule.graph import Graph
from chainrule.layers import Affine
from chainrule.networks import TwoLayerNet
from chainrule.optim import SGD

HEADING = re.compile(r"^\[(\d+)\] (.*?)(?:\s{3,}|$)")


def headings(text):
    return [m.group(2) for line in text.splitlines() if (m := HEADING.match(line))]


def test_apple_trace_has_the_books_equations():
    text = explain(buy_apple_graph())
    assert headings(text) == ["price = apple price × tax", "apple price = apple × apple count"]
    for line in [
        "dout = ∂price/∂price = 1",
        "∂z/∂x = y = 1.1    ∂z/∂y = x = 200",
        "dx = dout · y = 1 · 1.1 = 1.1",
        "dy = dout · x = 1 · 200 = 200",
        "dout = ∂price/∂apple price = 1.1",
        "dx = dout · y = 1.1 · 2 = 2.2",
        "dy = dout · x = 1.1 · 100 = 110",
    ]:
        assert line in text, line


def test_apple_orange_trace_runs_in_backward_order():
    g = buy_apple_orange_graph()
    text = explain(g)
    expected = [
        f"{n.name} = {n.inputs[0].name} {'×' if n.op == 'MulLayer' else '+'} {n.inputs[1].name}"
        for n in reversed(g.nodes)
    ]
    assert headings(text) == expected
    assert "∂z/∂x = 1    ∂z/∂y = 1" in text
    assert "dx = dout · 1 = 1.1 · 1 = 1.1" in text
    assert "dx = dout · y = 1.1 · 3 = 3.3" in text and "dy = dout · x = 1.1 · 150 = 165" in text
    assert "dy = dout · x = 1 · 650 = 650" in text


@pytest.mark.parametrize("build", [buy_apple_graph, buy_apple_orange_graph])
def test_trace_numbers_match_the_recorded_gradients(build):
    g = build()
    text = explain(g)
    lines = text.splitlines()
    out = g.values[-1]
    for value in g.values:
        if value is out:
            continue
        # The line passing a gradient to this value ends with that gradient.
        row = re.compile(rf"    to {re.escape(value.name)}\s+d[xy] = ")
        passing = [line for line in lines if row.match(line)]
        assert len(passing) == 1, value.name
        assert passing[0].endswith(" = " + format_number(value.grad)), passing[0]
        if value.node is None:
            assert f"∂{out.name}/∂{value.name} " in text
            summary = [ln for ln in lines if ln.strip().startswith(f"∂{out.name}/∂{value.name} ")]
            assert summary[0].split()[-1] == format_number(value.grad)


def test_explain_leaves_the_gradients_as_they_were():
    g = example_graph("two-layer-net")
    before = {id(v): np.copy(v.grad) for v in g.values if v.grad is not None}
    dW = {n.name: n.layer.dW.copy() for n in g.nodes if isinstance(n.layer, Affine)}
    explain(g)
    for v in g.values:
        if v.grad is not None:
            np.testing.assert_array_equal(v.grad, before[id(v)])
    for n in g.nodes:
        if isinstance(n.layer, Affine):
            np.testing.assert_array_equal(n.layer.dW, dW[n.name])


def test_fan_out_shows_the_sum():
    g = Graph()
    a = g.input(2.0, "a")
    (a * g.input(5.0, "x") + a * g.input(7.0, "y")).backward()
    text = explain(g)
    assert "(a is used 2 times: part 1 of its gradient, which is their sum)" in text
    assert "(a is used 2 times: part 2 of its gradient, which is their sum)" in text
    assert re.search(r"∂\S+/∂a\s+7 \+ 5 = 12$", text, re.MULTILINE)
    assert a.grad == 12


def test_fan_out_of_an_inner_value_sums_the_arriving_gradient():
    g = Graph()
    h = g.input(3.0, "a") * g.input(2.0, "b")  # h = 6, then used twice
    g.apply(type(h.node.layer)(), h, h, name="square").backward()
    text = explain(g)
    # square = h · h: each use passes 6 back; h's node receives 6 + 6 = 12.
    assert f"dout = ∂square/∂{h.name} = 6 + 6 = 12   (the sum: used 2 times)" in text
    assert h.grad == 12


def test_relu_and_sigmoid_formulas():
    g = Graph()
    x = g.input(0.5, "x")
    y = x.sigmoid()
    y.relu().backward()
    text = explain(g)
    # ReLU's x is the sigmoid's output, not the learner's x: the trace primes its letter.
    assert "∂y/∂x′ = 1[x′ > 0] = 1" in text and "dx′ = dout · 1[x′ > 0] = 1 · 1 = " in text
    assert "∂y/∂x = y(1 − y)" in text
    s = float(y.data)
    assert f"= {format_number(s * (1 - s))}" in text
    assert text.rstrip().endswith(format_number(x.grad))

    g = Graph()
    v = g.input(np.array([-1.0, 2.0, 3.0, -4.0, 5.0]), "v")
    v.relu().backward(np.ones(5))
    assert "∂y/∂x = 1[x > 0] = (5) 1 at 3 of 5 entries, 0 elsewhere" in explain(g)


@pytest.fixture(scope="module")
def net_graph():
    return example_graph("two-layer-net")


def test_affine_trace_shapes_match_the_arrays(net_graph):
    text = explain(net_graph)
    flat = " ".join(text.split())  # long rows wrap before their result
    affines = [n for n in net_graph.nodes if isinstance(n.layer, Affine)]
    assert len(affines) == 2
    for node in affines:
        layer = node.layer
        n, fan_in = layer.x.shape
        fan_out = layer.W.shape[1]
        assert layer.dW.shape == layer.W.shape == (fan_in, fan_out)
        assert np.shape(node.inputs[0].grad) == (n, fan_in)
        assert f"dX ({n}×{fan_in}) = dout ({n}×{fan_out}) · Wᵀ ({fan_out}×{fan_in})" in flat
        assert f"dW ({fan_in}×{fan_out}) = Xᵀ ({fan_in}×{n}) · dout ({n}×{fan_out})" in flat
        assert f"db ({fan_out}) = Σ_rows dout ({n}×{fan_out})" in flat
        dw_row = rf"{node.name}\.dW \({fan_in}×{fan_out}\)\s+{re.escape(summarize(layer.dW))}\n"
        assert re.search(dw_row, text)
        assert f"{node.name}.db ({fan_out})" in text
    # The loss's own x is Affine2's output, not the input x: its letter is primed.
    assert "∂L/∂x′ = (y − t) / N" in text and "dx′ (2×10) = dout · (y − t) / N = " in text
    assert "to t               no gradient: backward passes none to this input" in text


def test_softmax_trace_shows_a_row_of_y_minus_t(net_graph):
    text = explain(net_graph)
    labels = net_graph["t"].data
    assert f"    t = [{labels[0]}, {labels[1]}]\n" in text  # the forward pass shows them
    row = net_graph.nodes[-1].grads[0][0]
    assert re.search(
        r"row 0 of dx′ +\[" + re.escape(", ".join(format_number(v, 2) for v in row)), text
    )
    assert row[labels[0]] < 0 and np.all(np.delete(row, labels[0]) > 0)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_fit_100_columns_and_are_plain(name):
    text = explain_example(name)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\x1b" not in text
    coloured = explain_example(name, color=True)
    assert "\x1b[31m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == text


def test_trace_before_backward_is_an_error():
    g = Graph()
    g.input(2.0, "a") * g.input(3.0, "b")
    with pytest.raises(StateError, match="backward"):
        explain(g)


def test_example_graph_names_and_options():
    assert len(example_graph("apple")) == 2 and len(example_graph("apple-orange")) == 4
    multi = example_graph("multi-layer-net", hidden=[20, 10], activation="sigmoid", samples=3)
    names = [n.name for n in multi.nodes]
    assert names == [
        "Affine1",
        "Sigmoid1",
        "Affine2",
        "Sigmoid2",
        "Affine3",
        "SoftmaxWithLoss",
    ]
    assert multi["x"].data.shape == (3, 784) and multi["Affine2"].data.shape == (3, 10)
    assert "Sigmoid: y = 1 / (1 + exp(−x′))" in explain(multi)
    small = example_graph("two-layer-net", hidden=[7])
    assert small["Affine1"].data.shape == (2, 7)
    with pytest.raises(ValueError, match="unknown example"):
        example_graph("pear")
    with pytest.raises(ValueError, match="one hidden layer"):
        example_graph("two-layer-net", hidden=[3, 4])
    # Deterministic: the same name and seed give the same numbers.
    a, b = example_graph("two-layer-net"), example_graph("two-layer-net")
    np.testing.assert_array_equal(a["x"].grad, b["x"].grad)


def test_number_and_array_formats():
    assert format_number(100 * 2 * 1.1) == "220"
    assert 1.1 * 3 != 3.3 and format_number(1.1 * 3) == "3.3"  # 3.3000000000000003
    assert format_number(-0.0) == "0"
    assert format_number(np.int64(7)) == "7" and format_number(np.float32(0.5)) == "0.5"
    assert format_number(np.array(3.25)) == "3.25"
    assert format_shape((2, 784)) == "2×784" and format_shape((50,)) == "50"
    assert format_shape(()) == "scalar"
    assert summarize(np.array([7, 2])) == "[7, 2]"
    assert summarize(np.arange(10.0)) == "min 0  mean 4.5  max 9"
    assert array_stats(np.array([1.0, -1.0, 1e-17, 0.0, 0.0])) == (-1.0, 0.0, 1.0)


@pytest.mark.parametrize("batch", [2, 3])
def test_training_steps_after_recording_leave_the_trace_as_it_was(batch):
    net = TwoLayerNet(784, 10, 10, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    graph, loss = net.record(rng.random((2, 784)), np.array([1, 2]))
    graph.backward(loss)
    before = explain(graph)
    optimizer = SGD(lr=0.5)
    for _ in range(3):  # the fast step, the layers' own pass, and weights changed in place
        optimizer.update(
            net.params, net.gradient(rng.random((batch, 784)), rng.integers(0, 10, batch))
        )
        net.loss_and_gradient_by_layers(rng.random((batch, 784)), rng.integers(0, 10, batch))
    assert explain(graph) == before


def test_explain_formats_the_record_and_runs_no_layer(monkeypatch):
    g = buy_apple_orange_graph()
    before = explain(g)
    for node in g.nodes:
        monkeypatch.setattr(node.layer, "backward", None)  # calling it would raise
        monkeypatch.setattr(node.layer, "local_values", None)
    assert explain(g) == before


def forward_part(text):
    return text.split("Backward pass", 1)[0]


def test_forward_pass_comes_first_with_the_books_numbers():
    apple = forward_part(explain(buy_apple_graph()))
    assert apple.startswith("Forward pass through 2 nodes, in recording order")
    assert "    apple price = apple × apple count = 100 × 2 = 200\n" in apple
    assert "    price = apple price × tax = 200 × 1.1 = 220\n" in apple
    assert "    apple = 100\n" in apple and "    tax = 1.1\n" in apple
    both = forward_part(explain(buy_apple_orange_graph()))
    assert "    all price = apple price + orange price = 200 + 450 = 650\n" in both
    assert both.rstrip().endswith("price = all price × tax = 650 × 1.1 = 715")


def test_forward_pass_writes_functions_and_arrays(net_graph):
    g = Graph()
    x = g.input(0.5, "x")
    x.relu().backward()
    assert "    v₁ = ReLU(x) = ReLU(0.5) = 0.5\n" in forward_part(explain(g))
    forward = forward_part(explain(net_graph))
    assert f"    x = (2×784) {summarize(net_graph['x'].data)}\n" in forward
    relu = net_graph["Relu1"].data
    assert f"    Relu1 = ReLU(Affine1) = (2×50) {summarize(relu)}\n" in forward
    loss = format_number(net_graph["SoftmaxWithLoss"].data)
    assert f"    L = SoftmaxWithLoss(Affine2, t) = {loss}\n" in forward


def test_a_nodes_own_letters_never_read_as_the_learners_names():
    g = Graph()
    x, y = g.input(3.0, "x"), g.input(5.0, "y")
    (y * x).named("z").backward()  # MulLayer's x is the learner's y, and its y the learner's x
    text = explain(g)
    assert "MulLayer: z = x′ · y′" in text
    assert "∂z/∂x′ = y′ = 3    ∂z/∂y′ = x′ = 5" in text
    assert "to y               dx′ = dout · y′ = 1 · 3 = 3" in text
    assert "to x               dy′ = dout · x′ = 1 · 5 = 5" in text
    # Where the names are the node's own letters for the same values, nothing is primed.
    g = Graph()
    (g.input(3.0, "x") * g.input(5.0, "y")).named("z").backward()
    assert "MulLayer: z = x · y" in explain(g) and "′" not in explain(g)


def test_negative_factors_are_in_parentheses():
    g = Graph()
    (1 / g.input(2.0, "a")).named("b").backward()
    assert "dx = dout · (−y²) = 1 · (-0.25) = -0.25" in explain(g)


def test_explain_takes_what_net_record_returns():
    net = TwoLayerNet(784, 5, 10, dtype=np.float64, seed=0)
    x, t = np.random.default_rng(0).random((2, 784)), np.array([3, 1])
    recorded = net.record(x, t)
    text = explain(recorded)  # backpropagated from the loss first
    graph, loss = recorded
    assert graph.seed is loss and text == explain(graph)
    assert "Start: ∂L/∂L = 1" in text
    g = Graph()
    y = g.input(2.0, "a") * 3
    assert "∂v₁/∂a  3" in explain(y)
    with pytest.raises(ArgumentError, match="Graph"):
        explain("a graph")
