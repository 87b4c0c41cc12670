"""A new kind of node is one class: the trace and the pictures format it from the protocol.

``Tanh`` is defined in this file alone, nowhere in chainrule: recording it, drawing it and
explaining it must work from what it says of itself (symbol, formula, local derivatives).
"""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from chainrule.explain import explain
from chainrule.formatting import format_number
from chainrule.graph import Graph
from chainrule.layers import MulLayer
from chainrule.viz.diagram import find_renderer, render, to_dot


class Tanh:
    """``y = tanh(x)``; ``dx = dout · (1 − y²)``."""

    symbol, formula, local = "tanh", "y = tanh(x)", ("1 − y²",)

    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out**2)

    def local_values(self):
        return (1.0 - self.out**2,)


X, C = 0.5, 3.0  # out = tanh(x) · c, so the gradient arriving at tanh is c
Y = np.tanh(X)
LOCAL = 1 - np.tanh(X) ** 2
DX = C * LOCAL


@pytest.fixture
def graph():
    g = Graph()
    y = g.apply(Tanh(), g.input(X, "x"), name="y")
    g.apply(MulLayer(), y, g.input(C, "c"), name="out").backward()
    return g


def test_the_new_node_backpropagates(graph):
    assert graph["x"].grad == pytest.approx(DX, rel=1e-15)
    assert graph.nodes[0].local_values == pytest.approx((LOCAL,))


def test_the_trace_explains_the_new_node(graph):
    text = explain(graph)
    y, local, dx = format_number(Y), format_number(LOCAL), format_number(DX)
    assert f"    y = tanh(x) = tanh(0.5) = {y}\n" in text
    assert re.search(r"^\[2\] y = tanh\(x\) +Tanh: y = tanh\(x\)$", text, re.MULTILINE)
    assert f"gradient arriving  dout = ∂out/∂y = {format_number(C)}\n" in text
    assert f"local derivative   ∂y/∂x = 1 − y² = {local}\n" in text
    assert f"to x               dx = dout · (1 − y²) = 3 · {local} = {dx}\n" in text
    assert re.search(rf"∂out/∂x +{re.escape(dx)}$", text, re.MULTILINE)


def test_the_picture_draws_the_new_node(graph, tmp_path):
    dot = to_dot(graph)
    assert re.search(r'"n0" \[shape="ellipse", margin="0.05", label="tanh"', dot)
    for text in (format_number(Y), format_number(DX), format_number(C)):
        assert f">{text}<" in dot
    if find_renderer() is None:
        pytest.skip("no Graphviz renderer installed (dot or graphviz-pure)")
    root = ET.parse(render(dot, tmp_path / "tanh.svg")).getroot()
    texts = [t.text.strip() for t in root.iter() if t.tag.endswith("text") and t.text]
    for text in ("tanh", "x", "c", "0.5", format_number(Y), format_number(DX)):
        assert text in texts, text
