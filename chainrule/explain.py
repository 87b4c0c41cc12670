"""The backward pass of a recorded graph, told node by node with the numbers in it.

:func:`explain` walks a :class:`~chainrule.graph.Graph` after ``backward`` in the order
backward ran (the reverse of recording order) and writes, for each node, the gradient
arriving at its output, the node's local derivative with its formula, and the product it
passes to each input, exactly as chapter 5 of the book does by hand::

    [1] price = apple price × tax                    MulLayer: z = x · y
        gradient arriving  dout = ∂price/∂price = 1
        local derivatives  ∂z/∂x = y = 1.1            ∂z/∂y = x = 200
        to apple price     dx = dout · y = 1 · 1.1 = 1.1
        to tax             dy = dout · x = 1 · 200 = 200

Scalars are written in full (``format(x, ".6g")``: 220, not 220.00000000000003); arrays
by their shape and a short summary (:mod:`chainrule.formatting`). The text is plain
(``color=True`` adds ANSI colours for a terminal) and at most 100 columns wide for the
book's examples and networks.

:func:`example_graph` builds the graphs the command line names (``apple``,
``apple-orange``, ``two-layer-net``, ``multi-layer-net``), already backpropagated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.errors import StateError
from chainrule.formatting import describe, format_number, format_shape, is_scalar, summarize
from chainrule.graph import Graph, Node, Value
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid
from chainrule.losses import SoftmaxWithLoss

__all__ = [
    "EXAMPLE_NAMES",
    "example_graph",
    "example_title",
    "explain",
    "explain_example",
    "network_graph",
]

EXAMPLE_NAMES: tuple[str, ...] = ("apple", "apple-orange", "two-layer-net", "multi-layer-net")

_WIDTH = 100  # the widest line the book's examples and the networks produce
_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


# ---------------------------------------------------------------------------------------
# The trace


class _Style:
    """Colours for a terminal, or none (the default: the text may go to a file)."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def grad(self, text: str) -> str:
        return f"{_RED}{text}{_RESET}" if self.color else text

    def head(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.color else text


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_INDENT = " " * 23  # where a row's text starts: 4 spaces, an 18-column label, a space


def _row(label: str, text: str) -> str:
    """One aligned row of a node's block: a label column, then the equation.

    A row wider than 100 columns breaks before its last ``=`` (the result), which goes on
    a continuation line under the equation.
    """
    line = f"    {label:<18} {text}"
    if len(_ANSI.sub("", line)) <= _WIDTH or " = " not in text:
        return line
    head, _, tail = line.rpartition(" = ")
    return f"{head}\n{_INDENT}  = {tail}"


def _equation(lhs: str, formula: str, operands: Sequence[Any], result: Any, style: _Style) -> str:
    """``dx = dout · y = 1.1 · 2 = 2.2`` for scalars; shapes and a summary for arrays."""
    if all(is_scalar(v) for v in operands) and is_scalar(result):
        numbers = " · ".join(format_number(v) for v in operands)
        return f"{lhs} = {formula} = {numbers} = {style.grad(format_number(result))}"
    return f"{lhs} = {formula} = {style.grad(describe(result))}"


def _broadcast_note(grad: Any, value: Any) -> str:
    return "" if np.shape(grad) == np.shape(value) else "   (summed back over broadcast axes)"


def _explain_mul(node: Node, dout: Any, grads: tuple, names: list[str], style: _Style) -> list[str]:
    x, y = (v.data for v in node.inputs)
    return [
        _row("local derivatives", f"∂z/∂x = y = {describe(y)}    ∂z/∂y = x = {describe(x)}"),
        _row(f"to {names[0]}", _equation("dx", "dout · y", [dout, y], grads[0], style))
        + _broadcast_note(dout, x),
        _row(f"to {names[1]}", _equation("dy", "dout · x", [dout, x], grads[1], style))
        + _broadcast_note(dout, y),
    ]


def _explain_add(node: Node, dout: Any, grads: tuple, names: list[str], style: _Style) -> list[str]:
    x, y = (v.data for v in node.inputs)
    return [
        _row("local derivatives", "∂z/∂x = 1    ∂z/∂y = 1   (the gradient passes through)"),
        _row(f"to {names[0]}", _equation("dx", "dout · 1", [dout, 1], grads[0], style))
        + _broadcast_note(dout, x),
        _row(f"to {names[1]}", _equation("dy", "dout · 1", [dout, 1], grads[1], style))
        + _broadcast_note(dout, y),
    ]


def _explain_relu(
    node: Node, dout: Any, grads: tuple, names: list[str], style: _Style
) -> list[str]:
    x = node.inputs[0].data
    if is_scalar(x):
        local = 1 if float(x) > 0 else 0
        why = f"x = {format_number(x)} {'>' if local else '≤'} 0, so {local}"
        return [
            _row("local derivative", f"∂y/∂x = 1 if x > 0 else 0:  {why}"),
            _row(
                f"to {names[0]}", _equation("dx", "dout · 1[x > 0]", [dout, local], grads[0], style)
            ),
        ]
    mask = np.greater(x, 0)
    passed = int(np.count_nonzero(mask))
    return [
        _row("local derivative", "∂y/∂x = 1 if x > 0 else 0, entry by entry"),
        _row("", f"{passed} of {mask.size} entries have x > 0 and pass dout on; the rest get 0"),
        _row(f"to {names[0]}", _equation("dx", "dout · 1[x > 0]", [dout, mask], grads[0], style)),
    ]


def _explain_sigmoid(
    node: Node, dout: Any, grads: tuple, names: list[str], style: _Style
) -> list[str]:
    y = node.output.data
    local = y * (1.0 - y)
    return [
        _row("local derivative", f"∂y/∂x = y(1 − y) = {describe(local)}   (y = {describe(y)})"),
        _row(f"to {names[0]}", _equation("dx", "dout · y(1 − y)", [dout, local], grads[0], style)),
    ]


def _explain_affine(
    node: Node, dout: Any, grads: tuple, names: list[str], style: _Style
) -> list[str]:
    layer: Affine = node.layer
    fan_in, fan_out = layer.W.shape
    n = layer.x.shape[0]
    # The shapes written out, so the reader sees why dW = Xᵀ·dY (and not Wᵀ·dY) fits W.
    X, dY = f"{n}×{fan_in}", f"{n}×{fan_out}"
    Xt, Wt, W = f"{fan_in}×{n}", f"{fan_out}×{fan_in}", f"{fan_in}×{fan_out}"
    return [
        _row("local derivatives", f"∂Y/∂X = Wᵀ, ∂Y/∂W = Xᵀ, ∂Y/∂b = 1;  X {X}, W {W}, b {fan_out}"),
        _row(
            f"to {names[0]}",
            f"dX ({X}) = dY ({dY}) · Wᵀ ({Wt}) = {style.grad(summarize(grads[0]))}",
        ),
        _row("to W", f"dW ({W}) = Xᵀ ({Xt}) · dY ({dY}) = {style.grad(summarize(layer.dW))}"),
        _row("to b", f"db ({fan_out}) = Σ_rows dY ({dY}) = {style.grad(summarize(layer.db))}"),
    ]


def _explain_softmax(
    node: Node, dout: Any, grads: tuple, names: list[str], style: _Style
) -> list[str]:
    layer: SoftmaxWithLoss = node.layer
    n, classes = layer.y.shape
    lines = [
        _row(
            "local derivative", f"dx = dout · (y − t) / N,  y = softmax(x) ({n}×{classes}), N = {n}"
        ),
        _row(
            f"to {names[0]}",
            f"dx ({format_shape(np.shape(grads[0]))}) = {format_number(dout)} · (y − t) / {n}"
            f" = {style.grad(summarize(grads[0]))}",
        ),
    ]
    if classes <= 10:
        # One row in full: the gradient is the softmax output minus the one-hot label.
        t0 = np.asarray(layer.t[0])
        if t0.ndim == 0:
            label = format_number(t0)
        elif np.count_nonzero(t0) == 1 and t0.max() == 1:
            label = f"{int(t0.argmax())} (one-hot)"
        else:
            label = summarize(t0)
        row = np.asarray(grads[0]).reshape(n, classes)[0]
        y_row = ", ".join(f"{v:.2f}" for v in layer.y[0])
        dx_row = ", ".join(format_number(v, 2) for v in row)
        lines += [
            _row("sample 0", f"t = {label},  y = [{y_row}]"),
            _row("", f"dx = [{dx_row}]"),
        ]
    if len(grads) < len(node.inputs):
        lines.append(_row(f"to {names[1]}", "no gradient: the labels are data, not learned"))
    return lines


def _explain_other(
    node: Node, dout: Any, grads: tuple, names: list[str], style: _Style
) -> list[str]:
    return [
        _row("local derivative", f"as computed by {node.op}.backward"),
        *(_row(f"to {name}", style.grad(describe(g))) for name, g in zip(names, grads)),
    ]


_Explainer = Callable[[Node, Any, tuple, list[str], _Style], list[str]]
_EXPLAINERS: list[tuple[type, str, _Explainer]] = [
    (MulLayer, "z = x · y", _explain_mul),
    (AddLayer, "z = x + y", _explain_add),
    (Relu, "y = max(x, 0)", _explain_relu),
    (Sigmoid, "y = 1 / (1 + exp(−x))", _explain_sigmoid),
    (Affine, "Y = X·W + b", _explain_affine),
    (SoftmaxWithLoss, "L = cross-entropy(softmax(x), t)", _explain_softmax),
]


def _output_symbol(value: Value) -> str:
    """How the value backpropagated from is written in ``∂?/∂v``: ``L`` for a loss."""
    if value.node is not None and isinstance(value.node.layer, SoftmaxWithLoss):
        return "L"
    return value.name


def _seeds(graph: Graph) -> list[Value]:
    """The values backward started from: a gradient, but no consumer that passed one back."""
    fed = {id(v) for node in graph.nodes if node.output.grad is not None for v in node.inputs}
    return [v for v in graph.values if v.grad is not None and id(v) not in fed]


def _sum_text(parts: list[Any], total: Any, style: _Style) -> str:
    """``1.1 + 2.2 = 3.3`` for scalars; the count and the total's summary for arrays."""
    if all(is_scalar(p) for p in parts):
        numbers = " + ".join(format_number(p) for p in parts)
        return f"{numbers} = {style.grad(format_number(total))}"
    return f"sum of {len(parts)} gradients = {style.grad(describe(total))}"


def _node_heading(step: int, node: Node, formula: str, symbol: Callable[[Value], str]) -> str:
    """``[1] price = apple price × tax        MulLayer: z = x · y``."""
    args = [symbol(v) for v in node.inputs]
    out = symbol(node.output)
    if isinstance(node.layer, MulLayer):
        expr = f"{out} = {args[0]} × {args[1]}"
    elif isinstance(node.layer, AddLayer):
        expr = f"{out} = {args[0]} + {args[1]}"
    elif node.name.startswith(node.op) or node.name.startswith(getattr(node.layer, "name", "-")):
        # A network's node is named after its layer (Affine1, Relu1): "Affine1(x)" says all.
        expr = f"{node.name}({', '.join(args)})"
    else:
        expr = f"{out} = {node.op}({', '.join(args)})"
    expr = f"[{step}] {expr}"
    right = f"{node.op}: {formula}" if formula else node.op
    line = expr + " " * max(3, 52 - len(expr)) + right
    return line if len(line) <= _WIDTH else f"{expr}\n    {right}"


def _total(parts: list[Any]) -> Any:
    # Added in the order graph.backward added them, so the sum is the same to the bit.
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _same(a: Any, b: Any) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=1e-6, atol=0.0))


def _stale_message(node: Node) -> str:
    return (
        f"explain: the layer of node {node.name!r} has run on other data since this graph's "
        "backward (a network's layers keep only their last forward); record the graph and "
        "call backward again, then explain it"
    )


def explain(graph: Graph, *, color: bool = False) -> str:
    """The backward pass of ``graph`` (after ``backward``) as text, node by node.

    Nodes come in the order backward ran them. For each: the gradient arriving at its
    output (the sum of several, where the output feeds several nodes), the local
    derivative with its formula, and the gradient passed to each input with the numbers
    multiplied. The inputs' gradients (and an Affine layer's dW and db) end it.
    ``color=True`` marks gradients red and headings bold with ANSI codes, for a terminal.

    Raises:
        StateError: ``graph.backward`` has not run (no value has a gradient), or a node's
            layer has run forward on other data since (a network's layers are shared).
    """
    style = _Style(color)
    seeds = _seeds(graph)
    if not seeds:
        raise StateError("explain: the graph has no gradients yet; call graph.backward(output)")
    top = seeds[-1]
    out = _output_symbol(top)

    def symbol(value: Value) -> str:
        return out if value is top else value.name

    ran = [node for node in reversed(graph.nodes) if node.output.grad is not None]
    plural = "s" if len(ran) != 1 else ""
    lines = [
        style.head(f"Backward pass through {len(ran)} node{plural}, from {out} back to the inputs"),
        "Each node multiplies the gradient arriving at its output (dout) by its local",
        "derivative and passes the product to each input; a value used by several nodes",
        "gets the sum of their gradients.",
        "",
    ]
    lines += [f"Start: ∂{out}/∂{symbol(v)} = {style.grad(describe(v.grad))}" for v in seeds]

    uses: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            uses[id(v)] = uses.get(id(v), 0) + 1
    received: dict[int, list[Any]] = {}  # id(value) -> the gradients passed to it so far
    for step, node in enumerate(ran, start=1):
        dout = node.output.grad
        # Run this node's backward again: the same layer, the same saved forward inputs and
        # the same dout give the very numbers graph.backward added up, node by node.
        try:
            grads = node.layer.backward(dout)
        except ValueError as error:  # ShapeError: the layer ran on other data since
            raise StateError(_stale_message(node)) from error
        if not isinstance(grads, tuple):
            grads = (grads,)
        formula, explainer = next(
            ((f, fn) for cls, f, fn in _EXPLAINERS if isinstance(node.layer, cls)),
            ("", _explain_other),
        )
        lines += ["", style.head(_node_heading(step, node, formula, symbol))]
        parts = received.get(id(node.output), [])
        arriving = f"dout = ∂{out}/∂{symbol(node.output)} = "
        if len(parts) > 1:
            arriving += _sum_text(parts, dout, style) + f"   (the sum: used {len(parts)} times)"
        else:
            arriving += style.grad(describe(dout))
        lines.append(_row("gradient arriving", arriving))
        lines += explainer(node, dout, grads, [symbol(v) for v in node.inputs], style)
        parts_here: dict[int, list[int]] = {}
        for value, grad in zip(node.inputs, grads):
            received.setdefault(id(value), []).append(grad)
            parts_here.setdefault(id(value), []).append(len(received[id(value)]))
        for value in {id(v): v for v in node.inputs}.values():
            if uses[id(value)] > 1 and id(value) in parts_here:
                numbers = " and ".join(str(k) for k in parts_here[id(value)])
                noun = "parts" if len(parts_here[id(value)]) > 1 else "part"
                lines.append(
                    _row(
                        "",
                        f"({value.name} is used {uses[id(value)]} times: {noun} {numbers} "
                        "of its gradient, which is their sum)",
                    )
                )

    for value in graph.values:
        parts = received.get(id(value))
        if parts and not _same(_total(parts), value.grad):
            raise StateError(_stale_message(value.node or ran[-1]))

    skipped = len(graph.nodes) - len(ran)
    if skipped:
        verb = "nodes do" if skipped != 1 else "node does"
        lines += ["", f"({skipped} {verb} not lead to {top.name} and got no gradient)"]
    leaves = [v for v in graph.values if v.node is None and v.grad is not None]
    if leaves:
        lines += ["", style.head(f"Gradients of {out} with respect to the inputs")]
        width = max(len(v.name) for v in leaves)
        for v in leaves:
            parts = received.get(id(v), [])
            if len(parts) > 1:
                text = _sum_text(parts, v.grad, style)
            else:
                text = style.grad(describe(v.grad))
            lines.append(f"    ∂{out}/∂{v.name:<{width}}  {text}")
    affines = [n for n in ran if isinstance(n.layer, Affine) and n.layer.dW is not None]
    if affines:
        lines += ["", style.head("Gradients of the parameters (what an optimiser uses)")]
        rows = []
        for node in reversed(affines):  # in recording order: Affine1 first
            layer = node.layer
            rows.append((f"{node.name}.dW ({format_shape(layer.dW.shape)})", layer.dW))
            rows.append((f"{node.name}.db ({format_shape(layer.db.shape)})", layer.db))
        width = max(len(label) for label, _ in rows)
        lines += [f"    {label:<{width}}  {style.grad(summarize(g))}" for label, g in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The graphs the command line names


def network_graph(net: Any, x: Any, t: Any) -> Graph:
    """Record ``net`` (a MultiLayerNet or TwoLayerNet) on ``(x, t)`` and backpropagate it.

    One node per layer (Affine1, Relu1, ..., SoftmaxWithLoss); after this every value
    holds its gradient and each Affine node's layer its ``dW`` and ``db``.
    """
    graph, loss = net.record(x, t)
    graph.backward(loss)
    return graph


def _mnist_batch(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` real digits from the embedded MNIST test set, chosen by ``seed``."""
    from chainrule.data.mnist import load_mnist

    _, (x_test, t_test) = load_mnist()
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(x_test), size=samples, replace=False))
    return x_test[picked].astype(np.float64), t_test[picked]


def example_title(name: str, *, hidden: Sequence[int] | None = None, samples: int = 2) -> str:
    """A heading for a picture of :func:`example_graph` ``(name, ...)``."""
    if name == "apple":
        return "Buying apples: 100 × 2 × 1.1 = 220"
    if name == "apple-orange":
        return "Buying apples and oranges: (100 × 2 + 150 × 3) × 1.1 = 715"
    default = [50] if name == "two-layer-net" else [50, 50]
    sizes = ", ".join(map(str, [784, *(hidden or default), 10]))
    network = "TwoLayerNet" if name == "two-layer-net" else "MultiLayerNet"
    return f"{network}({sizes}) on {samples} MNIST digits, layer by layer"


def example_graph(
    name: str,
    *,
    hidden: Sequence[int] | None = None,
    activation: str = "relu",
    samples: int = 2,
    seed: int = 0,
) -> Graph:
    """A backpropagated graph by name, one of :data:`EXAMPLE_NAMES`.

    ``"apple"`` and ``"apple-orange"`` are the book's shopping examples
    (:data:`chainrule.examples.EXAMPLES`). ``"two-layer-net"`` is the book's
    ``TwoLayerNet(784, hidden or 50, 10)`` and ``"multi-layer-net"`` a ``MultiLayerNet``
    with ``hidden`` sizes (default ``[50, 50]``) and ``activation``, both float64 with
    weights from ``seed``, on ``samples`` real MNIST digits (from the embedded set).
    """
    from chainrule.examples import EXAMPLES
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    if name in EXAMPLES:
        return EXAMPLES[name]()
    if name not in EXAMPLE_NAMES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLE_NAMES)}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if name == "two-layer-net":
        sizes = list(hidden) if hidden else [50]
        if len(sizes) != 1:
            raise ValueError(f"two-layer-net has one hidden layer, got sizes {sizes}")
        net: MultiLayerNet = TwoLayerNet(784, sizes[0], 10, dtype=np.float64, seed=seed)
    else:
        sizes = list(hidden) if hidden else [50, 50]
        net = MultiLayerNet(784, sizes, 10, activation=activation, dtype=np.float64, seed=seed)
    x, t = _mnist_batch(samples, seed)
    return network_graph(net, x, t)


def explain_example(name: str, *, color: bool = False, **options: Any) -> str:
    """:func:`explain` of :func:`example_graph` ``(name, **options)``."""
    return explain(example_graph(name, **options), color=color)
