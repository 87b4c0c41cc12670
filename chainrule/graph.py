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

The layers are the same objects one calls by hand. The graph is also the record that the
trace (:mod:`chainrule.explain`) and the pictures (:mod:`chainrule.viz.graph`) format:
every value keeps its ``data`` and ``grad``, and ``backward`` keeps on every node what
it passed back (see :class:`Node`), so a network that goes on training after recording
(its layers run again, its weights change in place) leaves the record as it was.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from chainrule.errors import StateError
from chainrule.layers import AddLayer, MulLayer, Relu, Sigmoid

__all__ = ["Graph", "Node", "Value"]


class Value:
    """One value in a graph: ``data`` from the forward pass, ``grad`` (dL/d value) after backward.

    ``node`` is the node that produced it, or None for an input. Arithmetic with ``*`` and
    ``+`` and the methods ``relu``/``sigmoid`` record new nodes in the same graph. Values
    compare and hash by identity (``==`` records no node), so the trace and the pictures
    key their tables by value.
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
    """One layer applied to ``inputs`` (values), producing ``output``, a value of the same name.

    A node records what the trace and the pictures show, so they never ask the layer,
    whose saved state the next forward replaces:

    - ``param_shapes``: from recording, the shape of each parameter the layer's
      ``param_rules`` name (``{"W": (784, 50), "b": (50,)}`` for ``dW`` and ``db``);
    - from the last :meth:`Graph.backward` that reached the node (else None or empty):
      ``grads``, the gradients it passed to its inputs, in input order (a loss passes none
      to its labels, so it may be shorter than ``inputs``); ``local_values``, the layer's
      ``local_values()`` then; ``param_grads``, each gradient ``param_rules`` names
      (``{"dW": ..., "db": ...}``). Arrays are copies: training cannot change them.

    The properties read the layer's description of itself (the node protocol of
    :mod:`chainrule.layers`), with a default for each part a layer leaves out.
    """

    __slots__ = (
        "grads",
        "inputs",
        "layer",
        "local_values",
        "name",
        "output",
        "param_grads",
        "param_shapes",
    )

    def __init__(self, layer: Any, inputs: list[Value], name: str) -> None:
        self.layer, self.inputs, self.name = layer, inputs, name
        self.output: Value
        self.param_shapes = {
            param: np.shape(getattr(layer, param)) for param in _param_names(self.param_rules)
        }
        self.forget_backward()

    @property
    def op(self) -> str:
        """The layer's class name, e.g. ``"MulLayer"``."""
        return type(self.layer).__name__

    @property
    def symbol(self) -> str:
        """Its mark: an operator of one character (``×``), else a name (``ReLU``)."""
        return getattr(self.layer, "symbol", self.op)

    @property
    def title(self) -> str:
        """What a picture calls the node: the layer's ``name`` (``Affine1``), else its symbol."""
        return getattr(self.layer, "name", self.symbol)

    @property
    def formula(self) -> str:
        """Its forward rule, ``z = x · y``; empty if the layer gives none."""
        return getattr(self.layer, "formula", "")

    @property
    def output_letter(self) -> str:
        """The formula's left side (``z``; ``L`` for a loss), else ``out``."""
        left, equals, _ = self.formula.partition("=")
        return left.strip() if equals and left.strip() else "out"

    @property
    def is_loss(self) -> bool:
        """True for a loss: a node whose formula computes ``L``."""
        return self.output_letter == "L"

    @property
    def input_letters(self) -> tuple[str, ...]:
        """Each input's letter: the layer's ``input_letters``, else forward's argument names."""
        letters = getattr(self.layer, "input_letters", None) or _argument_names(self.layer.forward)
        return tuple(
            letters[i] if i < len(letters) else f"x{i + 1}" for i in range(len(self.inputs))
        )

    @property
    def local(self) -> tuple[str, ...]:
        """Each input's local derivative as a formula (``("y", "x")``); empty if not given."""
        return tuple(getattr(self.layer, "local", ()))

    @property
    def param_rules(self) -> tuple[tuple[str, str], ...]:
        """``(gradient attribute, rule)`` of each parameter, ``(("dW", "Xᵀ · dout"), ...)``."""
        return tuple(getattr(self.layer, "param_rules", ()))

    def forget_backward(self) -> None:
        """Clear what a backward recorded: the node has passed no gradient back."""
        self.grads: tuple[Any, ...] | None = None
        self.local_values: tuple[Any, ...] | None = None
        self.param_grads: dict[str, Any] = {}

    def record_backward(self, grads: tuple[Any, ...]) -> None:
        """Keep ``grads`` (what the layer's backward returned) and the layer's derivatives."""
        self.grads = grads
        local_values: Callable[[], tuple[Any, ...]] | None = getattr(
            self.layer, "local_values", None
        )
        self.local_values = None if local_values is None else _snapshot(local_values())
        self.param_grads = {
            name: _snapshot(getattr(self.layer, name)) for name, _ in self.param_rules
        }

    def __repr__(self) -> str:
        args = ", ".join(v.name for v in self.inputs)
        return f"Node({self.name!r}: {self.op}({args}) -> {self.output.name!r})"


def _param_names(param_rules: tuple[tuple[str, str], ...]) -> list[str]:
    """The parameters whose gradients ``param_rules`` names: ``W`` for ``dW``, as the book."""
    return [gradient[1:] for gradient, _ in param_rules]


def _argument_names(function: Callable[..., Any]) -> list[str]:
    """The names of ``function``'s positional parameters: ``["x", "y"]`` for MulLayer's forward."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in positional]


def _snapshot(x: Any) -> Any:
    """A copy of each array in ``x`` (an array, a tuple of them, or numbers)."""
    if isinstance(x, tuple):
        return tuple(_snapshot(item) for item in x)
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


class Graph:
    """A recorded computation: values and the nodes between them, in recording order."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.nodes: list[Node] = []
        self.seed: Value | None = None  # the value the last backward started from
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
        Gradients of values ``output`` does not depend on stay None. Each node that runs
        records what it passed back (:class:`Node`); ``seed`` becomes ``output``. Calling
        it again starts afresh.
        """
        if output.graph is not self:
            raise StateError(f"value {output.name!r} belongs to another graph")
        for value in self.values:
            value.grad = None
        for node in self.nodes:
            node.forget_backward()
        if dout is None:
            dout = 1.0 if np.ndim(output.data) == 0 else np.ones_like(output.data)
        output.grad = dout
        self.seed = output
        for node in reversed(self.nodes):
            if node.output.grad is None:
                continue
            grads = node.layer.backward(node.output.grad)
            if not isinstance(grads, tuple):
                grads = (grads,)
            node.record_backward(grads)
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
