"""The forward and backward pass of a recorded graph, told node by node with the numbers in it.

:func:`explain` formats what a :class:`~chainrule.graph.Graph` recorded. First the forward
pass, in recording order, each value from its inputs::

    apple price = apple × apple count = 100 × 2 = 200
    price = apple price × tax = 200 × 1.1 = 220

then the backward pass, in the order it ran (the reverse), the way chapter 5 of the book
works it by hand: for each node the gradient arriving at its output, its local
derivatives, and the product it passes to each input::

    [1] price = apple price × tax                    MulLayer: z = x · y
        gradient arriving  dout = ∂price/∂price = 1
        local derivatives  ∂z/∂x = y = 1.1    ∂z/∂y = x = 200
        to apple price     dx = dout · y = 1 · 1.1 = 1.1
        to tax             dy = dout · x = 1 · 200 = 200

Each node is written from its own description (``symbol``, ``formula``, ``local``,
``param_rules``: the node protocol of :mod:`chainrule.layers`) and from what
``graph.backward`` recorded on it; nothing is computed again, so a network that trains on
after recording leaves the text as it was. Numbers are written by
:mod:`chainrule.formatting`: scalars in full, arrays by their shape and a summary. The
text is plain (``color=True`` adds ANSI colours for a terminal) and at most 100 columns
wide for the book's examples and networks.

:func:`example_graph` builds the graphs the command line names (:data:`EXAMPLE_NAMES`),
already backpropagated.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, StateError
from chainrule.formatting import (
    describe,
    format_number,
    format_shape,
    is_matrix,
    is_scalar,
    is_short,
    summarize,
)
from chainrule.graph import Graph, Node, Value, as_graph
from chainrule.messages import display_width, message, pad

__all__ = [
    "EXAMPLE_NAMES",
    "Trace",
    "example_graph",
    "example_title",
    "explain",
    "explain_example",
    "network_graph",
]

EXAMPLE_NAMES: tuple[str, ...] = (
    "apple",
    "apple-orange",
    "sigmoid",
    "affine",
    "softmax-with-loss",
    "two-layer-net",
    "multi-layer-net",
    "convnet",
)

_WIDTH = 100  # the widest line the book's examples and the networks produce
_ROW_IN_FULL = 10  # a gradient of at most this many columns also shows its first row
_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


# ---------------------------------------------------------------------------------------
# Lines


class _Style:
    """Colours for a terminal, or none (the default: the text may go to a file), and the
    language of the words (:mod:`chainrule.messages`)."""

    def __init__(self, color: bool, lang: str = "en") -> None:
        self.color, self.lang = color, lang

    def say(self, key: str, **fields: object) -> str:
        return message(key, self.lang, **fields)

    def grad(self, text: str) -> str:
        return f"{_RED}{text}{_RESET}" if self.color else text

    def head(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.color else text


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
LABEL_WIDTH = 18  # the label column of a node's rows ("gradient arriving", "to apple")
_INDENT = " " * (4 + LABEL_WIDTH + 1)  # where a row's text starts


def _wrapped(line: str, indent: str) -> str:
    """``line``, or if wider than 100 columns, broken before its last ``=`` (the result),
    and before its last ``·`` when what is left is still too wide. A small matrix counts
    as wide as its rows will be (:func:`stack_matrices`)."""
    stacked = stack_matrices(line).split("\n")
    if max(display_width(_ANSI.sub("", part)) for part in stacked) <= _WIDTH or " = " not in line:
        return line
    head, _, tail = line.rpartition(" = ")
    if display_width(_ANSI.sub("", head)) > _WIDTH and " · " in head:  # a long product too
        left, _, right = head.rpartition(" · ")
        head = f"{left}\n{indent}· {right}"
    return f"{head}\n{indent}= {tail}"


def _row(label: str, text: str) -> str:
    """One aligned row of a node's block: a label column, then the equation."""
    return _wrapped(f"    {pad(label, LABEL_WIDTH)} {text}", _INDENT + "  ")


# A small matrix as summarize writes it on one line, [[1, 2], [3, 4]]: two rows or more.
_MATRIX = re.compile(r"\[(\[[^\[\]]*\](?:, \[[^\[\]]*\])+)\]")


def stack_matrices(text: str) -> str:
    """``text`` with each line's last small matrix written row under row, as NumPy
    prints one, the rows under the first::

        X = (2×2) [[1, 2],
                   [3, 4]]
    """
    lines = []
    for line in text.split("\n"):
        found = list(_MATRIX.finditer(line))
        if not found:
            lines.append(line)
            continue
        matrix = found[-1]
        rows = re.findall(r"\[[^\[\]]*\]", matrix.group(1))
        head, tail = line[: matrix.start()], line[matrix.end() :]
        indent = " " * (display_width(_ANSI.sub("", head)) + 1)
        lines.append(f"{head}[{rows[0]},")
        lines += [f"{indent}{row}," for row in rows[1:-1]]
        lines.append(f"{indent}{rows[-1]}]{tail}")
    return "\n".join(lines)


# A name with an operator in it (X · W) is written in parentheses after ∂: ∂L/∂(X · W).
_OPERATOR = re.compile(r"[·×+−*/@^]| - ")


def partial(name: str) -> str:
    """``∂`` and ``name``, in parentheses where it holds an operator: ``∂(X · W)``."""
    return f"∂({name})" if _OPERATOR.search(name) else f"∂{name}"


def _shape_note(x: Any) -> str:
    """`` (2×50)`` after the name of an array; nothing after a scalar's."""
    return "" if x is None or is_scalar(x) else f" ({format_shape(np.shape(x))})"


def _expression(node: Node, args: Sequence[str]) -> str:
    """The node applied to ``args``: ``a × b``, ``−a``, ``ReLU(a)``, ``SoftmaxWithLoss(a, t)``,
    or as the node writes itself (``1 / a``)."""
    if node.written is not None:
        return node.written.format(*args)
    symbol = node.symbol
    if len(symbol) == 1:  # an operator
        return f" {symbol} ".join(args) if len(args) > 1 else f"{symbol}{args[0]}"
    function = node.op if any(c.isspace() for c in symbol) else symbol
    return f"{function}({', '.join(args)})"


def _assignment(name: str, expression: str) -> str:
    """``price = apple price × tax``; the expression alone where it is the name, ``exp(a)``."""
    return expression if name == expression else f"{name} = {expression}"


def _factor(formula: str) -> str:
    """A formula as a factor of a product: ``(1 − y²)`` and ``(−y²)`` in parentheses,
    ``y(1 − y)`` as it is."""
    if formula.startswith(("−", "-")):
        return f"({formula})"
    depth = 0
    for i, char in enumerate(formula):
        depth += (char in "([") - (char in ")]")
        if depth == 0 and formula[i - 1 : i + 2] in (" + ", " − ", " - "):
            return f"({formula})"
    return formula


def _signed(x: Any) -> str:
    """A number as a factor of a product: ``(-0.5)`` in parentheses where negative."""
    text = format_number(x)
    return f"({text})" if text.startswith("-") else text


def _sum_text(parts: Sequence[Any], total: Any, style: _Style) -> str:
    """``1.1 + 2.2 = 3.3`` for scalars; the count and the total's summary for arrays."""
    if all(is_scalar(p) for p in parts):
        numbers = " + ".join(format_number(p) for p in parts)
        return f"{numbers} = {style.grad(format_number(total))}"
    return f"{style.say('sum_of', n=len(parts))} = {style.grad(describe(total))}"


def _summed_over_broadcast(dout: Any, local: Any, grad: Any) -> bool:
    """True where an element-wise ``dout · local`` was summed back to a smaller input."""
    try:
        product = np.broadcast_shapes(np.shape(dout), np.shape(local))
    except ValueError:  # not element-wise (Affine's dout · Wᵀ is a matrix product)
        return False
    return np.shape(grad) != product


class _Letters:
    """A node's formulas in letters that cannot be mistaken for the graph's names.

    A node writes its rule in its own letters (MulLayer's ``z = x · y``). Where the graph
    names another value with one of them (the learner's ``y`` is this node's input ``x``),
    the letter gets a prime here (``x′``), in every formula of the node's block, and
    :meth:`where` says which value of the graph each primed letter stands for.
    """

    def __init__(self, node: Node, names: dict[str, Value]) -> None:
        own = {node.output_letter: node.output, **dict(zip(node.input_letters, node.inputs))}
        self.primes = {
            letter: letter + "′"
            for letter, value in own.items()
            if names.get(letter, value) is not value
        }
        self.stands_for = {self.primes[k]: v for k, v in own.items() if k in self.primes}
        self.node = node
        self.input_letters = tuple(self.primes.get(x, x) for x in node.input_letters)
        self.output_letter = self.primes.get(node.output_letter, node.output_letter)

    def where(self, name_of: Any, lang: str = "en") -> str:
        """``y′ is v₂, x′ is v₁``: the value each primed letter stands for, by ``name_of``;
        empty where no letter has a prime."""
        return ", ".join(
            message("stands_for", lang, letter=letter, name=name_of(value))
            for letter, value in self.stands_for.items()
        )

    def __call__(self, text: str) -> str:
        """``text`` with each clashing letter primed, where it stands alone (not the x of
        ``exp`` or of ``x̂``)."""
        for letter, primed in self.primes.items():
            text = re.sub(rf"(?<![A-Za-z_]){letter}(?![A-Za-z_\u0300-\u036f])", primed, text)
        return text


def _named_shapes(node: Node, letters: _Letters) -> dict[str, tuple[int, ...]]:
    """The shapes a gradient rule can name: the inputs and the output by their letters,
    the parameters, and ``dout``, the gradient that arrived."""
    shapes = {letter: np.shape(v.data) for letter, v in zip(letters.input_letters, node.inputs)}
    shapes[letters.output_letter] = np.shape(node.output.data)
    shapes.update(node.param_shapes)
    shapes["dout"] = np.shape(node.output.grad)
    return shapes


def _with_shape(token: str, shapes: dict[str, tuple[int, ...]]) -> str:
    """A rule's token with the shape of what it names: ``Xᵀ (784×2)``, ``dout (2×50)``.

    ``ᵀ`` transposes; tokens that name no array (``·``, ``Σ_rows``, a scalar) stay as
    they are.
    """
    name = token.removesuffix("ᵀ")
    shape = shapes.get(name, ())
    if not shape:
        return token
    if name != token and len(shape) > 2:  # an Affine's images (N, C, H, W) as rows (N, C·H·W)
        shape = (shape[0], int(np.prod(shape[1:])))
    return f"{token} ({format_shape(shape[::-1] if name != token else shape)})"


def _rule_with_shapes(rule: str, shapes: dict[str, tuple[int, ...]]) -> str:
    """A gradient rule with each array's shape after its name: ``Xᵀ (784×2) · dout (2×50)``."""
    return " ".join(_with_shape(token, shapes) for token in rule.split())


def _first_row(lhs: str, grad: Any, style: _Style) -> list[str]:
    """``row 0 of dx  [0.05, …, -0.45, …]`` for a batch of a few columns (a loss's y − t)."""
    if np.ndim(grad) != 2 or np.shape(grad)[1] > _ROW_IN_FULL or is_short(grad):
        return []
    first = ", ".join(format_number(v, 2) for v in np.asarray(grad)[0])
    return [_row("  " + style.say("row0", lhs=lhs), f"[{first}]")]


# ---------------------------------------------------------------------------------------
# The trace


class _Trace:
    """The text of one backpropagated graph, built from what the graph recorded."""

    def __init__(self, graph: Graph, style: _Style, who: str = "explain") -> None:
        if graph.seed is None:
            raise StateError(
                f"{who}: the graph has no gradients yet; call graph.backward(output), or "
                "pass (graph, loss) as net.record(x, t) returns it"
            )
        self.graph, self.style, self.top = graph, style, graph.seed
        loss = self.top.node is not None and self.top.node.is_loss
        # A gradient other than ones arrives from a loss further on (the book's dY).
        given = not np.all(np.asarray(self.top.grad) == 1)
        self.top_name = "L" if loss else self.top.name
        self.out = "L" if given else self.top_name
        self.ran = [node for node in reversed(graph.nodes) if node.grads is not None]
        self.names = {self.name(v): v for v in graph.values if not v.constant}
        # The gradients passed to each value, in the order backward added them up.
        self.parts: dict[Value, list[tuple[Node, Any]]] = {}
        for node in self.ran:
            for value, grad in zip(node.inputs, node.grads):
                if not value.constant:
                    self.parts.setdefault(value, []).append((node, grad))

    def name(self, value: Value) -> str:
        """How a value is written: its name, or ``L`` for the loss backward started from."""
        return self.top_name if value is self.top else value.name

    def grads_of(self, value: Value) -> list[Any]:
        """The parts of ``value``'s gradient, one per use, in the order backward added them."""
        return [grad for _, grad in self.parts.get(value, [])]

    # -- forward -------------------------------------------------------------------------

    def forward(self) -> list[str]:
        """Each value in recording order: an input's data, a node's result from its inputs."""
        nodes = len(self.graph.nodes)
        say = self.style.say
        lines = [
            self.style.head(say("forward", n=nodes, s="s" if nodes != 1 else "")),
            say("forward_note"),
            "",
        ]
        for value in self.graph.values:
            if value.constant and value.auto:
                continue  # written as its number where it is used
            if value.node is None:
                text = f"{self.name(value)} = {describe(value.data)}"
            else:
                text = self._computed(value.node)
            lines.append(_wrapped(f"    {text}", " " * 8))
        return lines

    def _computed(self, node: Node) -> str:
        """``price = apple price × tax = 200 × 1.1 = 220``; arrays by shape and summary."""
        expression = _expression(node, [self.name(v) for v in node.inputs])
        text = _assignment(self.name(node.output), expression)
        if all(np.ndim(v.data) <= 1 and is_short(v.data) for v in node.inputs):
            text += f" = {_expression(node, [summarize(v.data) for v in node.inputs])}"
        return f"{text} = {describe(node.output.data)}"

    # -- backward ------------------------------------------------------------------------

    def backward(self) -> list[str]:
        """Each node in the order backward ran, then the inputs' and parameters' gradients."""
        plural = "s" if len(self.ran) != 1 else ""
        say = self.style.say
        lines = [
            self.style.head(say("backward", n=len(self.ran), s=plural, top=self.name(self.top))),
            *say("backward_note").splitlines(),
            "",
            f"{say('start')}: {self.start()}",
        ]
        if any(_Letters(node, self.names).primes for node in self.ran):
            lines[-2:-2] = say("primes_note").splitlines()
        for step, node in enumerate(self.ran, start=1):
            lines += ["", *self.step(step, node)]
        skipped = len(self.graph.nodes) - len(self.ran)
        if skipped:
            plural, verb = ("s", "do") if skipped != 1 else ("", "does")
            lines += ["", say("skipped", n=skipped, s=plural, verb=verb, top=self.top.name)]
        return lines + self._input_gradients() + self._param_gradients()

    def start(self) -> str:
        """``∂L/∂Y = …``: the gradient backward started with."""
        derivative = f"{partial(self.out)}/{partial(self.name(self.top))}"
        return f"{derivative} = {self.style.grad(describe(self.top.grad))}"

    def step(self, step: int, node: Node) -> list[str]:
        """The block of one node of the backward pass: its heading, which value each primed
        letter stands for, the gradient arriving, its local derivatives, and what it
        passes to each input and parameter."""
        letters = _Letters(node, self.names)
        where = letters.where(self.name, self.style.lang)
        lines = [
            self.style.head(self._heading(step, node, letters)),
            *([_row(self.style.say("where"), where)] if where else []),
            _row(self.style.say("arriving"), self._arriving(node)),
            *self._local_rows(node, letters),
            *self._input_rows(node, letters),
            *self._param_rows(node, letters),
            *self._fan_out_notes(node),
        ]
        return stack_matrices("\n".join(lines)).split("\n")

    def _heading(self, step: int, node: Node, letters: _Letters) -> str:
        """``[1] price = apple price × tax        MulLayer: z = x · y``."""
        expression = _expression(node, [self.name(v) for v in node.inputs])
        expr = f"[{step}] {_assignment(self.name(node.output), expression)}"
        right = f"{node.op}: {letters(node.formula)}" if node.formula else node.op
        line = expr + " " * max(3, 52 - display_width(expr)) + right
        return line if display_width(line) <= _WIDTH else f"{expr}\n    {right}"

    def _arriving(self, node: Node) -> str:
        """``dout = ∂price/∂all price = 1.1``, or the sum where the output feeds several nodes."""
        text = f"dout = {partial(self.out)}/{partial(self.name(node.output))} = "
        parts = self.grads_of(node.output)
        if len(parts) > 1:
            total = _sum_text(parts, node.output.grad, self.style)
            return text + total + "   " + self.style.say("used", n=len(parts))
        return text + self.style.grad(describe(node.output.grad))

    def _local_rows(self, node: Node, letters: _Letters) -> list[str]:
        """``∂z/∂x = y = 1.1    ∂z/∂y = x = 200``: each local derivative, with its value."""
        values = node.local_values or (None,) * len(node.local)
        terms = []
        local = [letters(formula) for formula in node.local]
        for letter, formula, value, x in zip(letters.input_letters, local, values, node.inputs):
            if x.constant:
                continue
            term = f"∂{letters.output_letter}/∂{letter} = {formula}"
            if value is not None and describe(value) != formula.replace("−", "-"):
                term += f" = {describe(value)}"
            terms.append(term)
        if not terms:
            return []
        label = self.style.say("local" if len(terms) == 1 else "locals")
        if all(formula == "1" for formula, x in zip(node.local, node.inputs) if not x.constant):
            terms[-1] += "   " + self.style.say("passes")
        one_row = _row(label, "    ".join(terms))
        if "\n" not in one_row and not any(is_matrix(v) for v in values if v is not None):
            return [one_row]
        return [_row(label if i == 0 else "", term) for i, term in enumerate(terms)]

    def _input_rows(self, node: Node, letters: _Letters) -> list[str]:
        """``to tax  dy = dout · x = 1 · 200 = 200``: the gradient passed to each input."""
        rows = []
        dout, local = node.output.grad, [letters(formula) for formula in node.local]
        values = node.local_values or ()
        shapes = _named_shapes(node, letters)
        for i, (value, letter) in enumerate(zip(node.inputs, letters.input_letters)):
            if value.constant:
                continue
            label = self.style.say("to", name=self.name(value))
            if i >= len(node.grads):
                rows.append(_row(label, self.style.say("no_gradient")))
                continue
            grad, lhs = node.grads[i], f"d{letter}"
            if i < len(node.input_rules):
                rule = _rule_with_shapes(letters(node.input_rules[i]), shapes)
                result = self.style.grad(summarize(grad))
                rows.append(_row(label, f"{lhs}{_shape_note(grad)} = {rule} = {result}"))
                continue
            formula = local[i] if i < len(local) else None
            local_value = values[i] if i < len(values) else None
            text = self._product(lhs, formula, dout, local_value, grad)
            if local_value is not None and _summed_over_broadcast(dout, local_value, grad):
                text += "   " + self.style.say("broadcast")
            rows.append(_row(label, text))
            rows += _first_row(lhs, grad, self.style)
        return rows

    def _product(self, lhs: str, formula: str | None, dout: Any, local: Any, grad: Any) -> str:
        """``dx = dout · y = 1.1 · 2 = 2.2``; for arrays, each factor's shape and a summary."""
        result = self.style.grad(summarize(grad))
        if formula is None:
            return f"{lhs}{_shape_note(grad)} = {result}"
        factor = _factor(formula)
        if local is not None and all(is_scalar(x) for x in (dout, local, grad)):
            numbers = f"{_signed(dout)} · {_signed(local)}"
            return f"{lhs} = dout · {factor} = {numbers} = {result}"
        factors = f"dout{_shape_note(dout)} · {factor}{_shape_note(local)}"
        return f"{lhs}{_shape_note(grad)} = {factors} = {result}"

    def _param_rows(self, node: Node, letters: _Letters) -> list[str]:
        """``to W  dW (784×50) = Xᵀ (784×2) · dout (2×50) = …``, from the node's param_rules."""
        rows = []
        shapes = _named_shapes(node, letters)
        for attribute, rule in node.param_rules:
            grad = node.param_grads.get(attribute)
            text = f"{attribute}{_shape_note(grad)} = {_rule_with_shapes(letters(rule), shapes)}"
            label = self.style.say("to", name=attribute[1:])
            rows.append(_row(label, f"{text} = {self.style.grad(summarize(grad))}"))
        return rows

    def _fan_out_notes(self, node: Node) -> list[str]:
        """Where an input is used several times: which parts of its gradient this node passed."""
        notes = []
        for value in dict.fromkeys(node.inputs):
            parts = self.parts.get(value, [])
            here = [k for k, (sender, _) in enumerate(parts, start=1) if sender is node]
            if len(parts) > 1 and here:
                say = self.style.say
                numbers = say("and").join(str(k) for k in here)
                which = say("parts" if len(here) > 1 else "part", k=numbers)
                notes.append(_row("", say("fan_out", name=value.name, n=len(parts), parts=which)))
        return notes

    def same_as(self, other: Graph) -> list[str]:
        """``other``, the same computation in fewer nodes (the book's fused layer), told
        node by node after a line saying whether its gradients equal this graph's: those
        of its inputs and parameters, matched by name (Affine's ``dW`` with ``W``)."""
        pairs = [(v.name, v.grad) for v in other.values if v.node is None and v.grad is not None]
        pairs += [(p[1:], g) for node in other.nodes for p, g in node.param_grads.items()]
        differences = []
        for name, grad in pairs:
            mine = self.graph[name].grad
            differences.append((name, float(np.max(np.abs(np.subtract(mine, grad))))))
        equal = all(
            np.allclose(self.graph[name].grad, grad, rtol=1e-10, atol=1e-12) for name, grad in pairs
        )
        layers = ", ".join(node.op for node in other.nodes)
        listed = ", ".join(f"{name} {diff:.2g}" for name, diff in differences)

        trace = _Trace(other, self.style)
        lines = [
            self.style.head(self.style.say("same_heading", layers=layers)),
            self.style.say("same_equal" if equal else "same_differ", listed=listed),
        ]
        for step, node in enumerate(trace.ran, start=1):
            lines += ["", *trace.step(step, node)]
        return lines

    def _input_gradients(self) -> list[str]:
        """The closing section: the gradient of each input, with its sum where it fans out."""
        leaves = [v for v in self.graph.values if v.node is None and v.grad is not None]
        if not leaves:
            return []
        lines = ["", self.style.head(self.style.say("input_grads", out=self.out))]
        width = max(display_width(partial(v.name)) for v in leaves)
        for value in leaves:
            parts = self.grads_of(value)
            if len(parts) > 1:
                text = _sum_text(parts, value.grad, self.style)
            else:
                text = self.style.grad(describe(value.grad))
            lines.append(f"    {partial(self.out)}/{pad(partial(value.name), width)}  {text}")
        return lines

    def _param_gradients(self) -> list[str]:
        """The closing section: each parameter's gradient (what an optimiser uses)."""
        rows = [
            (f"{node.title}.{attribute}{_shape_note(grad)}", grad)
            for node in self.graph.nodes  # in recording order: Affine1 first
            for attribute, grad in node.param_grads.items()
        ]
        if not rows:
            return []
        width = max(len(label) for label, _ in rows)
        return [
            "",
            self.style.head(self.style.say("param_grads")),
            *(f"    {label:<{width}}  {self.style.grad(summarize(g))}" for label, g in rows),
        ]


def explain(
    recorded: Graph | Value | tuple[Graph, Value],
    *,
    color: bool = False,
    same_as: Graph | None = None,
    lang: str = "en",
) -> Trace:
    """The forward and backward pass of a recorded graph as text (a :class:`Trace`).

    ``recorded`` is a graph after ``backward``, or a value (or ``(graph, loss)`` as
    ``net.record(x, t)`` returns), whose graph is backpropagated from it first unless the
    last backward started there.

    The forward pass lists each value in recording order, a node's from its inputs. The
    backward pass takes the nodes in the order backward ran them: for each, the gradient
    arriving at its output (the sum of several, where the output feeds several nodes),
    its local derivatives, and the gradient passed to each input and parameter, with the
    numbers multiplied. The inputs' and the parameters' gradients end it. Everything
    comes from what ``graph.backward`` recorded. ``color=True`` marks gradients red and
    headings bold with ANSI codes, for a terminal. ``same_as``, a backpropagated graph of
    the same computation in one node (the book's fused layer, its inputs named as here),
    ends the text: whether its gradients equal these, then its own backward pass.
    ``lang="ko"`` writes the words in Korean, in the terms of the book's Korean edition.

    Raises:
        StateError: ``graph.backward`` has not run.
    """
    graph = as_graph(recorded, "explain")

    def text(style: _Style) -> str:
        trace = _Trace(graph, style)
        lines = [*trace.forward(), "", *trace.backward()]
        if same_as is not None:
            lines += ["", "", *trace.same_as(same_as)]
        return stack_matrices("\n".join(lines)) + "\n"

    message("start", lang)  # an unknown language is an error before any work
    coloured = text(_Style(True, lang))
    return Trace(coloured if color else _ANSI.sub("", coloured), coloured)


class Trace(str):
    """The text :func:`explain` returns: a ``str`` (it prints and compares as the text),
    which a notebook shows as preformatted text, gradients red and headings bold."""

    __slots__ = ("coloured",)

    def __new__(cls, text: str, coloured: str) -> Trace:
        trace = super().__new__(cls, text)
        trace.coloured = coloured
        return trace

    def _repr_html_(self) -> str:
        body = html.escape(self.coloured, quote=False)
        body = re.sub(
            re.escape(_RED) + "(.*?)" + re.escape(_RESET),
            r'<span style="color:#c00000">\1</span>',
            body,
            flags=re.S,
        )
        body = re.sub(
            re.escape(_BOLD) + "(.*?)" + re.escape(_RESET), r"<b>\1</b>", body, flags=re.S
        )
        return f'<pre style="line-height:1.3">{body}</pre>'

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's terminal display: the text as print shows it, not its repr."""
        printer.text(str(self))


# ---------------------------------------------------------------------------------------
# The graphs the command line names


def network_graph(net: Any, x: Any, t: Any) -> Graph:
    """Record ``net`` (a MultiLayerNet or TwoLayerNet) on ``(x, t)`` and backpropagate it.

    One node per layer (Affine1, Relu1, ..., SoftmaxWithLoss); after this every value
    holds its gradient and every node its record of the backward pass (an Affine node's
    ``param_grads`` its ``dW`` and ``db``).
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


def example_title(
    name: str, *, hidden: Sequence[int] | None = None, samples: int = 2, lang: str = "en"
) -> str:
    """A heading for a picture of :func:`example_graph` ``(name, ...)``."""
    if name == "convnet":
        sizes = "1×28×28, conv 30 5×5, pool 2×2, 100, 10"
        return message("title_network", lang, network="SimpleConvNet", sizes=sizes, samples=samples)
    if name not in ("two-layer-net", "multi-layer-net"):
        return message(f"title_{name}", lang)
    default = [50] if name == "two-layer-net" else [50, 50]
    sizes = ", ".join(map(str, [784, *(hidden or default), 10]))
    network = "TwoLayerNet" if name == "two-layer-net" else "MultiLayerNet"
    return message("title_network", lang, network=network, sizes=sizes, samples=samples)


def example_graph(
    name: str,
    *,
    hidden: Sequence[int] | None = None,
    activation: str = "relu",
    samples: int = 2,
    seed: int = 0,
    inputs: dict[str, Any] | None = None,
    lang: str = "en",
) -> Graph:
    """A backpropagated graph by name, one of :data:`EXAMPLE_NAMES`.

    ``"apple"`` and ``"apple-orange"`` are the book's shopping examples; ``"sigmoid"``,
    ``"affine"`` and ``"softmax-with-loss"`` its figures built from primitive nodes
    (:data:`chainrule.examples.EXAMPLES`). ``"two-layer-net"`` is the book's
    ``TwoLayerNet(784, hidden or 50, 10)`` and ``"multi-layer-net"`` a ``MultiLayerNet``
    with ``hidden`` sizes (default ``[50, 50]``) and ``activation``, both float64 with
    weights from ``seed``, on ``samples`` real MNIST digits (from the embedded set).
    ``"convnet"`` is the book's ``SimpleConvNet`` (chapter 7; float64, the book's 0.01
    initial scale, weights from ``seed``) on ``samples`` digits as 1×28×28 images.
    ``inputs`` changes the book's examples' inputs by name (``{"apple": 120}``;
    :func:`chainrule.examples.example_inputs` lists them); ``lang="ko"`` names the
    shopping examples' values as the Korean edition does.
    """
    from chainrule.examples import EXAMPLES, build
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    if name in EXAMPLES:
        return build(name, inputs, lang=lang)
    if inputs:
        raise ArgumentError(f"{name} has no inputs to change: it reads MNIST digits")
    if name not in EXAMPLE_NAMES:
        raise ArgumentError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLE_NAMES)}")
    if samples < 1:
        raise ArgumentError(f"samples must be at least 1, got {samples}")
    if name == "convnet":
        from chainrule.networks import SimpleConvNet

        if hidden:
            raise ArgumentError("convnet has the book's hidden layer of 100: give no hidden sizes")
        x, t = _mnist_batch(samples, seed)
        conv = SimpleConvNet(dtype=np.float64, seed=seed)
        return network_graph(conv, x.reshape(-1, 1, 28, 28), t)
    if name == "two-layer-net":
        sizes = list(hidden) if hidden else [50]
        if len(sizes) != 1:
            raise ArgumentError(f"two-layer-net has one hidden layer, got sizes {sizes}")
        net: MultiLayerNet = TwoLayerNet(784, sizes[0], 10, dtype=np.float64, seed=seed)
    else:
        sizes = list(hidden) if hidden else [50, 50]
        net = MultiLayerNet(784, sizes, 10, activation=activation, dtype=np.float64, seed=seed)
    x, t = _mnist_batch(samples, seed)
    return network_graph(net, x, t)


def explain_example(
    name: str,
    *,
    color: bool = False,
    lang: str = "en",
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> Trace:
    """:func:`explain` of :func:`example_graph` ``(name, inputs=inputs, **options)``; a
    figure built from primitive nodes ends with the book's fused layer on the same numbers."""
    from chainrule.examples import FUSED, build_fused

    graph = example_graph(name, inputs=inputs, lang=lang, **options)
    fused = build_fused(name, inputs) if name in FUSED else None
    return explain(graph, color=color, same_as=fused, lang=lang)
