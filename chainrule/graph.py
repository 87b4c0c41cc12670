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
trace (:mod:`chainrule.explain`) and the pictures (:mod:`chainrule.viz.diagram`) format:
every value keeps its ``data`` and ``grad``, and ``backward`` keeps on every node what
it passed back (see :class:`Node`), so a network that goes on training after recording
(its layers run again, its weights change in place) leaves the record as it was.

Values are written NumPy's way: ``-x``, ``x - y``, ``x / y``, ``1 / x``, ``x ** 2``,
``x @ W``, ``x.exp()``, ``x.log()``, ``x.sum(axis)`` record the primitive nodes of
:mod:`chainrule.primitives`, so ``1 / (1 + (-x).exp())`` is Figure 5-19's sigmoid. A plain
number or array beside a value is a *constant*: it is written as its number and gets no
gradient. A value is named when it is made (``g.input(2.0, "x")``, ``x.exp(name="e")``,
``(a * b).named("f")``); one left unnamed gets a short name of its own (``v₁``, ``v₂``),
which never clashes with a learner's: naming a value ``v₁`` moves the automatic one on.
Giving a name that an input or a value already has replaces that value when nothing
depends on it yet, so a notebook cell such as ``x = g.input(1.0, "x")`` can run again
(see :meth:`Graph.rename`). Names are kept in a table, so recording is linear in the
number of nodes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, DTypeError, StateError
from chainrule.formatting import format_shape, is_short, summarize
from chainrule.layers import AddLayer, MulLayer, Relu, Sigmoid
from chainrule.primitives import Div, Dot, Exp, Log, Neg, Pow, Reciprocal, Sub, Sum
from chainrule.validation import check_real

__all__ = ["Graph", "Node", "Value", "as_graph", "set_notebook_view"]

_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


class Value:
    """One value in a graph: ``data`` from the forward pass, ``grad`` (dL/d value) after backward.

    ``node`` is the node that produced it, or None for an input or a constant. Arithmetic
    (``*``, ``+``, ``-``, ``/``, ``**``, ``@``) and the methods ``exp``, ``log``, ``sum``,
    ``relu`` and ``sigmoid`` record new nodes in the same graph, with NumPy arrays and
    numbers on either side. ``name`` is the learner's name, else an automatic one
    (``auto`` is then True); a ``constant`` never gets a gradient, and one left unnamed is
    named by its number. Values compare and hash by identity (``==`` records no node), so the trace
    and the pictures key their tables by value.
    """

    __slots__ = ("auto", "constant", "data", "grad", "graph", "name", "node", "replaced", "uses")
    # NumPy hands ``array * value`` to Value.__rmul__ instead of multiplying element-wise.
    __array_ufunc__ = None

    def __init__(
        self,
        graph: Graph,
        data: Any,
        name: str,
        node: Node | None = None,
        *,
        auto: bool = False,
        constant: bool = False,
    ) -> None:
        self.graph, self.data, self.name, self.node = graph, data, name, node
        self.auto, self.constant = auto, constant
        self.grad: Any = None
        self.uses = 0  # how many nodes take this value as an input
        self.replaced = False  # a newer value took its name (Graph.rename)

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.data)

    def named(self, name: str) -> Value:
        """Give this value ``name`` (what the trace and the pictures call it); return it."""
        self.graph.rename(self, name)
        return self

    def _apply(self, layer: Any, *inputs: Any, name: str | None = None) -> Value:
        return self.graph.apply(layer, *inputs, name=name)

    def __mul__(self, other: Any) -> Value:
        return self._apply(MulLayer(), self, other)

    def __rmul__(self, other: Any) -> Value:
        return self._apply(MulLayer(), other, self)

    def __add__(self, other: Any) -> Value:
        return self._apply(AddLayer(), self, other)

    def __radd__(self, other: Any) -> Value:
        return self._apply(AddLayer(), other, self)

    def __sub__(self, other: Any) -> Value:
        return self._apply(Sub(), self, other)

    def __rsub__(self, other: Any) -> Value:
        return self._apply(Sub(), other, self)

    def __neg__(self) -> Value:
        return self._apply(Neg(), self)

    def __truediv__(self, other: Any) -> Value:
        return self._apply(Div(), self, other)

    def __rtruediv__(self, other: Any) -> Value:
        # 1 / x is the book's one-input "/" node (Figure 5-19), whose derivative is −y².
        if not isinstance(other, Value) and np.ndim(other) == 0 and other == 1:
            return self._apply(Reciprocal(), self)
        return self._apply(Div(), other, self)

    def __pow__(self, k: Any) -> Value:
        return self._apply(Pow(k), self)

    def __matmul__(self, other: Any) -> Value:
        return self._apply(Dot(), self, other)

    def __rmatmul__(self, other: Any) -> Value:
        return self._apply(Dot(), other, self)

    def exp(self, *, name: str | None = None) -> Value:
        return self._apply(Exp(), self, name=name)

    def log(self, *, name: str | None = None) -> Value:
        return self._apply(Log(), self, name=name)

    def sum(
        self,
        axis: int | tuple[int, ...] | None = None,
        keepdims: bool = False,
        *,
        name: str | None = None,
    ) -> Value:
        return self._apply(Sum(axis, keepdims), self, name=name)

    def relu(self, *, name: str | None = None) -> Value:
        return self._apply(Relu(), self, name=name)

    def sigmoid(self, *, name: str | None = None) -> Value:
        return self._apply(Sigmoid(), self, name=name)

    def backward(self, dout: Any = None) -> None:
        """Backpropagate from this value; see :meth:`Graph.backward`."""
        self.graph.backward(self, dout)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, data={self.data!r}, grad={self.grad!r})"


class Node:
    """One layer applied to ``inputs`` (values), producing ``output``, whose name it shares.

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
        "output",
        "param_grads",
        "param_shapes",
    )

    def __init__(self, layer: Any, inputs: list[Value]) -> None:
        self.layer, self.inputs = layer, inputs
        self.output: Value
        self.param_shapes = {
            param: np.shape(getattr(layer, param)) for param in _param_names(self.param_rules)
        }
        self.forget_backward()

    @property
    def name(self) -> str:
        """The output value's name (``Affine1``, ``price``, ``v₂``)."""
        return self.output.name

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
    def written(self) -> str | None:
        """How the node applied to its inputs is written (``1 / {0}``), or None: the default,
        the symbol between the inputs or ``symbol(inputs)``."""
        return getattr(self.layer, "written", None)

    @property
    def input_rules(self) -> tuple[str, ...]:
        """Each input's gradient as a rule (``("dout · Wᵀ", "Xᵀ · dout")``), where it is not
        ``dout · local``; empty if not given."""
        return tuple(getattr(self.layer, "input_rules", ()))

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


def _check_number(what: str, data: Any, name: str | None) -> None:
    """A DTypeError unless ``data`` is a real number or an array of them."""
    called = f"Graph: {what}" + ("" if name is None else f" ({name!r})")
    try:
        check_real(called, "its value", data)
    except ValueError:  # NumPy refuses a ragged list
        raise DTypeError(
            f"{called}: its value must be a number or a rectangular array, "
            f"got {type(data).__name__}"
        ) from None


def _snapshot(x: Any) -> Any:
    """A copy of each array in ``x`` (an array, a tuple of them, or numbers)."""
    if isinstance(x, tuple):
        return tuple(_snapshot(item) for item in x)
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


class Graph:
    """A recorded computation: values and the nodes between them, in recording order.

    In a notebook a graph shows itself as its picture (values above the arrows, gradients
    below), drawn by Graphviz where a renderer is installed, else as a table.
    """

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.nodes: list[Node] = []
        self.seed: Value | None = None  # the value the last backward started from
        self._layer_ids: set[int] = set()
        self._auto_count = 0
        # Every name in use -> its value (a constant written as its number has no name
        # here): one lookup per new value, so recording stays linear in its length.
        self._names: dict[str, Value] = {}

    def _auto_name(self) -> str:
        """The next automatic name, ``v₁``, ``v₂`` …, skipping any a learner has taken."""
        while True:
            self._auto_count += 1
            name = "v" + str(self._auto_count).translate(_SUBSCRIPT)
            if name not in self._names:
                return name

    def _name_automatically(self, value: Value) -> None:
        value.name, value.auto = self._auto_name(), True
        self._names[value.name] = value

    def _add(self, value: Value, name: str | None) -> Value:
        """Keep ``value``, named ``name``, else automatically; a name refused keeps nothing."""
        if name is None:
            self._name_automatically(value)
        else:
            self.rename(value, name)
        self.values.append(value)
        return value

    def rename(self, value: Value, name: str) -> None:
        """Name ``value`` ``name``.

        A value with an automatic name that has it moves on to another. A value the
        learner named so that nothing depends on yet (an input no node uses, a result not
        used further) is replaced: it leaves the graph, with the unnamed values only it
        used, so a notebook cell recording ``x = g.input(1.0, "x")`` or
        ``y = (x * 2).named("y")`` can run again. The name of a value that a node uses is
        an error.
        """
        if not isinstance(name, str) or not name.strip():
            raise ArgumentError(f"a value's name must be a non-empty string, got {name!r}")
        if value.constant and value.auto:
            raise StateError(
                f"the constant {value.name} cannot be named; name it when made, "
                "graph.constant(data, name)"
            )
        other = self._names.get(name)
        if other is not None and other is not value:
            if other.auto:
                self._name_automatically(other)
            elif other.uses == 0:
                self._remove(other)
            else:
                user = next(node.name for node in self.nodes if other in node.inputs)
                raise StateError(
                    f"the name {name!r} is already used by a value that {user!r} depends "
                    "on; give another name, or record into a new Graph()"
                )
        if self._names.get(value.name) is value:
            del self._names[value.name]
            if value.auto and value.name == "v" + str(self._auto_count).translate(_SUBSCRIPT):
                self._auto_count -= 1  # the name just given is free again: no gap in v₁, v₂
        value.name, value.auto = name, False
        self._names[name] = value

    def _remove(self, value: Value) -> None:
        """Take ``value``, which no node uses, out of the graph with the node that made it,
        and so on up through the unnamed values and constants that only those nodes used."""
        doomed = [value]
        while doomed:
            gone = doomed.pop()
            gone.replaced = True
            self.values.remove(gone)
            if self._names.get(gone.name) is gone:
                del self._names[gone.name]
            if gone is self.seed:
                self._forget_gradients()
            node = gone.node
            if node is None:
                continue
            self.nodes.remove(node)
            self._layer_ids.discard(id(node.layer))
            for x in node.inputs:
                x.uses -= 1
            for x in dict.fromkeys(node.inputs):
                if x.uses == 0 and x.auto and (x.node is not None or x.constant):
                    doomed.append(x)

    def _forget_gradients(self) -> None:
        """Back to no backward: no gradients, no node's record of one."""
        self.seed = None
        for value in self.values:
            value.grad = None
        for node in self.nodes:
            node.forget_backward()

    def input(self, data: Any, name: str | None = None) -> Value:
        """Add an input (a leaf): a number or an array the computation starts from.

        Raises:
            DTypeError: ``data`` is not a real number or an array of them.
        """
        _check_number("an input", data, name)
        return self._add(Value(self, data, "", auto=True), name)

    def constant(self, data: Any, name: str | None = None) -> Value:
        """Add a constant: a number or an array that gets no gradient. Unnamed, it is written
        as itself (``1``, ``[0, 0, 1]``); named (labels ``t``), by its name.

        Raises:
            DTypeError: ``data`` is not a real number or an array of them.
        """
        _check_number("a constant", data, name)
        shape = format_shape(np.shape(data))
        text = summarize(data) if is_short(data) else f"constant ({shape})"
        value = Value(self, data, text, constant=True, auto=name is None)
        if name is not None:
            self.rename(value, name)
        self.values.append(value)
        return value

    def _own(self, x: Any, inputs: tuple[Any, ...]) -> Value:
        """``x`` as a value of this graph: itself, or a new constant for a number or array."""
        if not isinstance(x, Value):
            return self.constant(x)
        if x.replaced and x.graph is self:
            raise StateError(
                f"cannot use this {x.name!r}: a newer value named {x.name!r} replaced it; "
                "use the newer one"
            )
        if x.graph is not self:
            mine = next((v for v in inputs if isinstance(v, Value) and v.graph is self), None)
            here = f"with {mine.name!r}, a value of this graph" if mine else "in this graph"
            raise StateError(
                f"cannot use {x.name!r} {here}: {x.name!r} was recorded in another Graph; "
                "build a computation from the values of one graph"
            )
        return x

    def apply(self, layer: Any, *inputs: Any, name: str | None = None) -> Value:
        """Run ``layer.forward`` on ``inputs`` and record it as a node; return its output value.

        An input that is not a :class:`Value` (a plain number or array, such as the labels
        of a loss) becomes a constant of this graph; a value of another graph is an error.
        """
        if id(layer) in self._layer_ids:
            # A layer saves its forward inputs for backward; a second use would overwrite them.
            raise StateError(
                f"{type(layer).__name__} is already a node of this graph; "
                "use a new layer object for each node"
            )
        values = [self._own(x, inputs) for x in inputs]
        node = Node(layer, values)
        data = layer.forward(*(v.data for v in values))
        node.output = self._add(Value(self, data, "", node, auto=True), name)
        for value in values:
            value.uses += 1
        self._layer_ids.add(id(layer))
        self.nodes.append(node)
        return node.output

    def backward(self, output: Value, dout: Any = None) -> None:
        """Set ``grad`` on every value that ``output`` depends on: d output / d value.

        ``dout`` is the gradient arriving at ``output`` (1 by default). Nodes run in reverse
        recording order; a value used by several nodes gets the sum of their gradients.
        Gradients of values ``output`` does not depend on, and of constants, stay None.
        Each node that runs records what it passed back (:class:`Node`); ``seed`` becomes
        ``output``. Calling it again starts afresh.
        """
        if output.graph is not self:
            raise StateError(f"value {output.name!r} belongs to another graph")
        if output.replaced:
            raise StateError(f"value {output.name!r} was replaced by a newer one of that name")
        self._forget_gradients()
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
                if value.constant:
                    continue
                # Out of place on purpose: the same array may be the grad of another value.
                value.grad = grad if value.grad is None else value.grad + grad

    def __getitem__(self, name: str) -> Value:
        """The value with this name: an input's name, or the name of the node that made it."""
        return self._names[name]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def _repr_svg_(self) -> str | None:
        """A notebook's picture of the graph, where a Graphviz renderer is installed."""
        return None if _notebook_view is None else _notebook_view(self, "svg")

    def _repr_html_(self) -> str | None:
        """Where no Graphviz renderer is installed, a notebook's table of each value and
        gradient instead of the picture."""
        return None if _notebook_view is None else _notebook_view(self, "html")

    def __repr__(self) -> str:
        inputs = [v.name for v in self.values if v.node is None and not v.constant]
        state = f"backward from {self.seed.name}" if self.seed is not None else "no backward yet"
        return f"<Graph of {len(self.nodes)} nodes; inputs {', '.join(inputs)}; {state}>"


# The notebook's pictures are drawn by chainrule.viz.diagram, which imports this module;
# chainrule/__init__.py hands its view in here, so that this module never imports viz.
_notebook_view: Callable[[Graph, str], str | None] | None = None


def set_notebook_view(view: Callable[[Graph, str], str | None]) -> None:
    """Use ``view(graph, kind)`` for a notebook's ``"svg"`` and ``"html"`` of a graph."""
    global _notebook_view
    _notebook_view = view


def as_graph(recorded: Graph | Value | tuple[Graph, Value], who: str) -> Graph:
    """The graph of ``recorded``, for ``who`` (the function that asks, named in errors).

    A graph is itself. A value, or ``(graph, loss)`` as a network's ``record(x, t)``
    returns it, stands for its graph backpropagated from that value: the backward runs
    here unless the graph's last one started there.
    """
    if isinstance(recorded, tuple) and len(recorded) == 2:
        graph, output = recorded
        if not (isinstance(graph, Graph) and isinstance(output, Value)):
            raise ArgumentError(
                f"{who} takes a Graph, a Value, or (graph, output) as net.record gives"
            )
        if output.graph is not graph:
            raise StateError(f"{who}: {output.name!r} is not a value of that graph")
        recorded = output
    if isinstance(recorded, Value):
        if recorded.graph.seed is not recorded:
            recorded.backward()
        return recorded.graph
    if not isinstance(recorded, Graph):
        raise ArgumentError(f"{who} takes a Graph or a Value, got {type(recorded).__name__}")
    return recorded
