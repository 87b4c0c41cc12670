"""Record a computation made of layers as a graph, then backpropagate through it once.

A :class:`Graph` holds :class:`Value` objects (a forward value and, after backward, its
gradient) and :class:`Node` objects (one layer applied to input values). Nodes are kept in
the order they were recorded; since a node's inputs must exist before it does, that order
is already topological, so ``backward`` walks it in reverse with a plain loop (no
recursion, so a 10,000-node chain is fine) and adds up gradients where a value fans out::

    g = Graph()
    apple, count, tax = g.input(100, "apple"), g.input(2, "apple count"), g.input(1.1, "tax")
    price = (apple * count) * tax          # records two MulLayer nodes
    g.backward(price)                      # price.grad = 1, apple.grad = 2.2, ...

The layers are the same objects one calls by hand; after ``backward`` every value keeps its
``data`` and ``grad`` and every node its layer (with e.g. ``Affine.dW``), for drawing and
tracing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.errors import StateError
from chainrule.layers import AddLayer, MulLayer, Relu, Sigmoid

__all__ = ["Graph", "Node", "Value"]


class Value:
    """One value in a graph: ``data`` from the forward pass, ``grad`` (dL/d value) after backward.

    ``node`` is the node that produced it, or None for an input. Arithmetic with ``*`` and
    ``+`` and the methods ``relu``/``sigmoid`` record new nodes in the same graph.
    """

    __slots__ = ("data", "grad", "graph", "name", "node")

    def __init__(self, graph: Graph, data: Any, name: str, node: Node | None = None) -> None:
        self.graph, self.data, self.name, self.node = graph, data, name, node
        self.grad: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.data)

    def __mul__(self, other: Any) -> Value:
        return self.graph.apply(MulLayer(), self, other)

    def __rmul__(self, other: Any) -> Value:
        return self.graph.apply(MulLayer(), other, self)

    def __add__(self, other: Any) -> Value:
        return self.graph.apply(AddLayer(), self, other)

    def __radd__(self, other: Any) -> Value:
        return self.graph.apply(AddLayer(), other, self)

    def relu(self) -> Value:
        return self.graph.apply(Relu(), self)

    def sigmoid(self) -> Value:
        return self.graph.apply(Sigmoid(), self)

    def backward(self, dout: Any = None) -> None:
        """Backpropagate from this value; see :meth:`Graph.backward`."""
        self.graph.backward(self, dout)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, data={self.data!r}, grad={self.grad!r})"


class Node:
    """One layer applied to ``inputs`` (values), producing ``output``, a value of the same name."""

    __slots__ = ("inputs", "layer", "name", "output")

    def __init__(self, layer: Any, inputs: list[Value], name: str) -> None:
        self.layer, self.inputs, self.name = layer, inputs, name
        self.output: Value

    @property
    def op(self) -> str:
        """The layer's class name, e.g. ``"MulLayer"``."""
        return type(self.layer).__name__

    def __repr__(self) -> str:
        args = ", ".join(v.name for v in self.inputs)
        return f"Node({self.name!r}: {self.op}({args}) -> {self.output.name!r})"


class Graph:
    """A recorded computation: values and the nodes between them, in recording order."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.nodes: list[Node] = []
        self._layer_ids: set[int] = set()

    def input(self, data: Any, name: str | None = None) -> Value:
        """Add an input (a leaf): a number or an array the computation starts from."""
        value = Value(self, data, name or f"x{len(self.values)}")
        self.values.append(value)
        return value

    def apply(self, layer: Any, *inputs: Any, name: str | None = None) -> Value:
        """Run ``layer.forward`` on ``inputs`` and record it as a node; return its output value.

        An input that is not a :class:`Value` of this graph (a plain number or array, such
        as the labels of a loss) becomes a new input value.
        """
        if id(layer) in self._layer_ids:
            # A layer saves its forward inputs for backward; a second use would overwrite them.
            raise StateError(
                f"{type(layer).__name__} is already a node of this graph; "
                "use a new layer object for each node"
            )
        values = [x if isinstance(x, Value) and x.graph is self else self.input(x) for x in inputs]
        node = Node(layer, values, name or f"{type(layer).__name__}{len(self.nodes) + 1}")
        node.output = Value(self, layer.forward(*(v.data for v in values)), node.name, node)
        self._layer_ids.add(id(layer))
        self.nodes.append(node)
        self.values.append(node.output)
        return node.output

    def backward(self, output: Value, dout: Any = None) -> None:
        """Set ``grad`` on every value that ``output`` depends on: d output / d value.

        ``dout`` is the gradient arriving at ``output`` (1 by default). Nodes run in reverse
        recording order; a value used by several nodes gets the sum of their gradients.
        Gradients of values ``output`` does not depend on stay None. Calling it again
        starts afresh.
        """
        if output.graph is not self:
            raise StateError(f"value {output.name!r} belongs to another graph")
        for value in self.values:
            value.grad = None
        if dout is None:
            dout = 1.0 if np.ndim(output.data) == 0 else np.ones_like(output.data)
        output.grad = dout
        for node in reversed(self.nodes):
            if node.output.grad is None:
                continue
            grads = node.layer.backward(node.output.grad)
            if not isinstance(grads, tuple):
                grads = (grads,)
            # zip stops at the shorter: a loss returns no gradient for its labels.
            for value, grad in zip(node.inputs, grads):
                # Out of place on purpose: the same array may be the grad of another value.
                value.grad = grad if value.grad is None else value.grad + grad

    def __getitem__(self, name: str) -> Value:
        """The value with this name: an input's name, or the name of the node that made it."""
        for value in self.values:
            if value.name == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)
