"""The book's worked examples of chapter 5, and its figures rebuilt from primitive nodes.

Buying apples (and oranges) with tax runs twice, the two ways the chapter teaches: layers
chained by hand (``buy_apple``) and a recorded graph (``buy_apple_graph``). Expected
numbers, from the book: apple 100 × 2 × tax 1.1 = 220, with d apple 2.2, d apple count
110, d tax 200; apples and oranges (100 × 2 + 150 × 3) × 1.1 = 715, with d apple count
110, d apple 2.2, d orange 3.3, d orange count 165, d tax 650.

Three figures are built from the primitive nodes of :mod:`chainrule.primitives`, each
with the book's fused layer beside it (:data:`FUSED`), whose gradients they equal:
``sigmoid_graph`` (Figure 5-19: ×(−1), exp, +1 and /, whose chain of local derivatives
the book simplifies to ``y(1 − y)``), ``affine_graph`` (Figure 5-25: a dot node and an add
node, on the book's batch example with ``dY = [[1, 2, 3], [4, 5, 6]]``) and
``softmax_with_loss_graph`` (Appendix A: exp, sum, /, ×, log, × t, sum and ×(−1), ending
in ``y − t``).

:func:`build` makes any of them by name, with some inputs changed (``{"apple": 120}``)
and, with ``lang="ko"``, the shopping examples' values named as the book's Korean
edition names them (:data:`KOREAN_NAMES`: 사과, 사과 개수, 소비세, 귤, 귤 개수 …).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError
from chainrule.graph import Graph
from chainrule.layers import AddLayer, Affine, MulLayer, Sigmoid
from chainrule.losses import SoftmaxWithLoss

__all__ = [
    "EXAMPLES",
    "FUSED",
    "KOREAN_NAMES",
    "affine_graph",
    "build",
    "build_fused",
    "buy_apple",
    "buy_apple_graph",
    "buy_apple_orange",
    "buy_apple_orange_graph",
    "example_inputs",
    "fused_affine_graph",
    "fused_sigmoid_graph",
    "fused_softmax_with_loss_graph",
    "sigmoid_graph",
    "softmax_with_loss_graph",
]

# The book's numbers: its batch Affine example (section 5.6.2) and softmax's a (chapter 3).
AFFINE_X = ((1.0, 2.0), (3.0, 4.0))
AFFINE_W = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
AFFINE_B = (1.0, 2.0, 3.0)
AFFINE_DY = ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
SOFTMAX_A = (0.3, 2.9, 4.0)
SOFTMAX_T = (0.0, 0.0, 1.0)


def buy_apple(apple: float = 100, apple_num: float = 2, tax: float = 1.1) -> dict[str, float]:
    """Price of ``apple_num`` apples with tax, and its gradients, by hand-chained layers."""
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)

    dapple_price, dtax = mul_tax_layer.backward(1)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    return {"price": price, "dapple": dapple, "dapple_num": dapple_num, "dtax": dtax}


def buy_apple_orange(
    apple: float = 100,
    apple_num: float = 2,
    orange: float = 150,
    orange_num: float = 3,
    tax: float = 1.1,
) -> dict[str, float]:
    """Price of apples and oranges with tax, and its gradients, by hand-chained layers."""
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dall_price, dtax = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    return {
        "price": price,
        "dapple": dapple,
        "dapple_num": dapple_num,
        "dorange": dorange,
        "dorange_num": dorange_num,
        "dtax": dtax,
    }


def buy_apple_graph(apple: float = 100, apple_num: float = 2, tax: float = 1.1) -> Graph:
    """The apple example as a recorded graph, after backward from ``"price"``."""
    g = Graph()
    apple_price = g.apply(
        MulLayer(), g.input(apple, "apple"), g.input(apple_num, "apple count"), name="apple price"
    )
    price = g.apply(MulLayer(), apple_price, g.input(tax, "tax"), name="price")
    g.backward(price)
    return g


def buy_apple_orange_graph(
    apple: float = 100,
    apple_num: float = 2,
    orange: float = 150,
    orange_num: float = 3,
    tax: float = 1.1,
) -> Graph:
    """The apple-and-orange example as a recorded graph, after backward from ``"price"``."""
    g = Graph()
    apple_price = g.apply(
        MulLayer(), g.input(apple, "apple"), g.input(apple_num, "apple count"), name="apple price"
    )
    orange_price = g.apply(
        MulLayer(),
        g.input(orange, "orange"),
        g.input(orange_num, "orange count"),
        name="orange price",
    )
    all_price = g.apply(AddLayer(), apple_price, orange_price, name="all price")
    price = g.apply(MulLayer(), all_price, g.input(tax, "tax"), name="price")
    g.backward(price)
    return g


def sigmoid_graph(x: float = 1.0) -> Graph:
    """Figure 5-19: ``y = 1 / (exp(x × −1) + 1)`` from four primitive nodes, after backward.

    The backward pass multiplies their local derivatives, −y², 1, exp(−x) and −1, which
    the book simplifies to the Sigmoid node's ``y(1 − y)``.
    """
    g = Graph()
    x_value = g.input(x, "x")
    (1 / ((x_value * -1).exp() + 1)).named("y").backward()
    return g


def affine_graph(
    X: Sequence = AFFINE_X, W: Sequence = AFFINE_W, b: Sequence = AFFINE_B, dY: Sequence = AFFINE_DY
) -> Graph:
    """Figure 5-25: ``Y = X · W + b`` as a dot node and an add node, after backward with the
    gradient ``dY`` arriving (the book's example: ``db`` comes out ``[5, 7, 9]``)."""
    g = Graph()
    inputs = [g.input(np.array(v), name) for v, name in ((X, "X"), (W, "W"), (b, "b"))]
    X_value, W_value, b_value = inputs
    product = (X_value @ W_value).named("X · W")
    (product + b_value).named("Y").backward(np.array(dY))
    return g


def softmax_with_loss_graph(a: Sequence = SOFTMAX_A, t: Sequence = SOFTMAX_T) -> Graph:
    """Appendix A: Softmax-with-Loss of scores ``a`` against one-hot labels ``t``, from
    primitive nodes, after backward: softmax ``y = exp(a) × (1 / S)`` with ``S = Σ exp(a)``,
    then the cross-entropy ``L = −Σ t · log y``. The gradient of ``a`` is ``y − t``."""
    g = Graph()
    a_value, t_value = g.input(np.array(a), "a"), g.constant(np.array(t), "t")
    e = a_value.exp(name="exp(a)")
    y = (e * (1 / e.sum(name="S"))).named("y")
    ((t_value * y.log(name="log y")).sum() * -1).named("L").backward()
    return g


def _fused(
    layer: object,
    name: str,
    x: tuple[str, object],
    label: tuple[str, object] | None = None,
    dout: object = None,
) -> Graph:
    """One node of ``layer`` on the input ``x`` (and a constant ``label``), each given as
    ``(name, data)``, after backward with ``dout`` arriving."""
    g = Graph()
    values = [g.input(np.array(x[1]), x[0])]
    if label is not None:
        values.append(g.constant(np.array(label[1]), label[0]))
    g.apply(layer, *values, name=name).backward(None if dout is None else np.array(dout))
    return g


def fused_sigmoid_graph(x: float = 1.0) -> Graph:
    """The book's Sigmoid layer on the same ``x`` as :func:`sigmoid_graph`."""
    return _fused(Sigmoid(), "y", ("x", x))


def fused_affine_graph(
    X: Sequence = AFFINE_X, W: Sequence = AFFINE_W, b: Sequence = AFFINE_B, dY: Sequence = AFFINE_DY
) -> Graph:
    """The book's Affine layer (its dW and db) on the same numbers as :func:`affine_graph`."""
    return _fused(Affine(np.array(W), np.array(b)), "Y", ("X", X), dout=dY)


def fused_softmax_with_loss_graph(a: Sequence = SOFTMAX_A, t: Sequence = SOFTMAX_T) -> Graph:
    """The book's SoftmaxWithLoss layer on the same ``a`` and ``t`` as
    :func:`softmax_with_loss_graph`."""
    return _fused(SoftmaxWithLoss(), "L", ("a", a), ("t", t))


# name -> function building the recorded graph; for the command line.
EXAMPLES: dict[str, Callable[[], Graph]] = {
    "apple": buy_apple_graph,
    "apple-orange": buy_apple_orange_graph,
    "sigmoid": sigmoid_graph,
    "affine": affine_graph,
    "softmax-with-loss": softmax_with_loss_graph,
}
# name -> the book's fused layer on the same numbers, for the figures built of primitives.
FUSED: dict[str, Callable[[], Graph]] = {
    "sigmoid": fused_sigmoid_graph,
    "affine": fused_affine_graph,
    "softmax-with-loss": fused_softmax_with_loss_graph,
}

# The shopping examples' values as the book's Korean edition names them (5.1-5.4:
# 사과, 사과 개수, 귤, 귤 개수, 소비세; 지불 금액 for the price paid).
KOREAN_NAMES: dict[str, str] = {
    "apple": "사과",
    "apple count": "사과 개수",
    "apple price": "사과 가격",
    "orange": "귤",
    "orange count": "귤 개수",
    "orange price": "귤 가격",
    "all price": "세전 금액",
    "tax": "소비세",
    "price": "지불 금액",
}


def example_inputs(name: str) -> dict[str, Any]:
    """The inputs of example ``name`` a learner may change, by their (English) names, with
    their default values: ``{"apple": 100, "apple count": 2, "tax": 1.1}``. They are the
    example function's first parameters, in order."""
    graph = EXAMPLES[name]()
    return {v.name: v.data for v in graph.values if v.node is None and not v.constant}


def _arguments(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The example function's keyword arguments that set ``inputs`` (by input name)."""
    known = example_inputs(name)
    unknown = [key for key in inputs if key not in known]
    if unknown:
        raise ArgumentError(
            f"{name} has no input {unknown[0]!r}; its inputs are {', '.join(known)}"
        )
    parameters = list(inspect.signature(EXAMPLES[name]).parameters)
    return {parameters[i]: inputs[key] for i, key in enumerate(known) if key in inputs}


def build(name: str, inputs: Mapping[str, Any] | None = None, *, lang: str = "en") -> Graph:
    """Example ``name`` (one of :data:`EXAMPLES`) with ``inputs`` changed, backpropagated;
    with ``lang="ko"`` its values named as :data:`KOREAN_NAMES` says."""
    graph = EXAMPLES[name](**_arguments(name, inputs or {}))
    if lang == "ko":
        for value in list(graph.values):
            if value.name in KOREAN_NAMES and not value.auto:
                graph.rename(value, KOREAN_NAMES[value.name])
    return graph


def build_fused(name: str, inputs: Mapping[str, Any] | None = None) -> Graph:
    """The book's fused layer of figure ``name`` (one of :data:`FUSED`) on the same inputs
    as :func:`build` gives it."""
    return FUSED[name](**_arguments(name, inputs or {}))
