"""Draw a recorded graph as the book's figures do: values above the arrows, gradients below.

:func:`to_dot` turns a :class:`~chainrule.graph.Graph` into Graphviz DOT text, laid out
left to right. Each node (layer) is drawn from what it says of itself (its ``symbol``, its
parameters' shapes: the node protocol of :mod:`chainrule.layers`): a circle for an
operator or a short name (``×``, ``+``, ``exp``), else an ellipse (``ReLU``; ``Affine1``
over W's and b's shapes); each input is its name in plain text, and a constant its number
beside the node that uses it. Every other value sits on its arrow: the forward value
above the line in black and, after ``backward``, its gradient below the line in red, the
way chapter 5 draws backpropagation flowing right to left. Arrays show their shape and a
short summary.

:func:`render` writes the DOT text as ``.dot`` (text) or, through Graphviz's ``dot``
program (or graphviz-pure's, a self-contained port installed by ``pip install
graphviz-pure``), as ``.svg`` or ``.png``; its errors, :class:`RendererNotFound` and
:class:`RenderError`, live in :mod:`chainrule.errors`. Nothing here imports anything beyond
the standard library and NumPy.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, overload

import numpy as np

from chainrule.errors import ArgumentError, RendererNotFound, RenderError
from chainrule.fileio import atomic_write
from chainrule.formatting import (
    array_stats,
    format_number,
    format_shape,
    is_matrix,
    is_short,
    matrix_rows,
    printable,
    summarize,
)
from chainrule.graph import Graph, Node, Value, as_graph
from chainrule.messages import korean_font, message
from chainrule.viz.display import Picture

__all__ = [
    "FORMATS",
    "GRAD_COLOR",
    "RENDERERS",
    "RenderError",
    "RendererNotFound",
    "fill_title",
    "find_renderer",
    "hangul_problem",
    "notebook_view",
    "render",
    "to_dot",
    "value_table",
]

FORMATS = ("dot", "gv", "svg", "png")
# Programs that read DOT and take dot's flags, in the order they are looked for:
# Graphviz's own dot first (the user's choice if installed), then graphviz-pure.
RENDERERS = ("dot", "graphviz-pure")
GRAD_COLOR = "#c00000"  # the gradients' red, as the book prints them
RENDER_TIMEOUT_S = 60.0  # a graph of a few hundred nodes takes well under a second
_FONT = "Helvetica"
_KOREAN_FONT = "NanumGothic"  # Debian's fonts-nanum, named where fontconfig finds none
_VALUE_FONT_SIZE = 14
_SUMMARY_FONT_SIZE = 10
_TITLE_FONT_SIZE = 14
_SUMMARY_DIGITS = 2  # significant digits of an array's min, mean and max in a picture


# ---------------------------------------------------------------------------------------
# DOT text


def _esc(text: str) -> str:
    """Text for an HTML-like label: &, < and > escaped, line breaks as <BR/>, control
    characters shown (:func:`~chainrule.formatting.printable`)."""
    return html.escape(printable(str(text)), quote=False).replace("\n", "<BR/>")


class _Html(str):
    """An HTML-like label: goes into the DOT text between < and > as it is."""


def _quote(text: str) -> str:
    """A double-quoted DOT string; a line break becomes Graphviz's centred ``\\n``."""
    escaped = printable(str(text).replace("\r\n", "\n")).replace("\\", "\\\\")
    return '"' + escaped.replace('"', '\\"').replace("\n", "\\n") + '"'


def _value_lines(x: Any) -> tuple[str, list[str]]:
    """A value's main text and smaller lines under it.

    Scalars: ``220`` alone. A small matrix (up to 4×4): its rows, one under the other.
    Other small arrays: their entries. Others: the shape (``2×784``), then
    ``min … · max …`` and ``mean …`` (two short lines keep the arrows short).
    """
    if is_matrix(x):
        return "\n".join(matrix_rows(x)), []
    if is_short(x):
        return summarize(x), []
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        return format_shape(a.shape), [str(a.dtype)]
    lo, mean, hi = array_stats(a)
    n = _SUMMARY_DIGITS
    return format_shape(a.shape), [
        f"min {format_number(lo, n)} · max {format_number(hi, n)}",
        f"mean {format_number(mean, n)}",
    ]


def _text_cell(x: Any, color: str | None) -> str:
    """A row of a value's label: its text, in the middle column (the port's, below)."""
    main, details = _value_lines(x)
    cell = _esc(main)
    if details:
        small = "<BR/>".join(_esc(line) for line in details)
        cell += f'<BR/><FONT POINT-SIZE="{_SUMMARY_FONT_SIZE}">{small}</FONT>'
    if color is not None:
        cell = f'<FONT COLOR="{color}">{cell}</FONT>'
    side = '<TD CELLPADDING="0"></TD>'  # no width: the side columns stay 1 point wide
    return f"<TR>{side}<TD>{cell}</TD>{side}</TR>"


def _value_label(value: Value, show_grad: bool) -> str:
    """The label that draws a value on its arrow.

    A three-row table: the forward value, a 1-point black line that carries the arrow
    (edges attach to the ends of its middle cell, port ``p``), and the gradient in red.
    Edges cannot place one label above and one below themselves reliably in every
    renderer; a node whose middle row *is* the arrow can.
    """
    # dot ends an edge 1 point outside a port's end unless that end lies on the edge of
    # its rank (a value as wide as the widest of its rank); so a narrower value, the 2 of
    # apple count beside the 100 of apple, had a gap at each end of its line. The line
    # now reaches 1 point past the port on both sides, and no port end is on the rank's
    # edge: every edge ends on the line's end.
    end = '<TD WIDTH="1" HEIGHT="1" CELLPADDING="0" BGCOLOR="black"></TD>'
    port = '<TD PORT="p" HEIGHT="1" CELLPADDING="0" BGCOLOR="black"></TD>'
    rows = [_text_cell(value.data, None), f"<TR>{end}{port}{end}</TR>"]
    if show_grad and value.grad is not None:
        rows.append(_text_cell(value.grad, GRAD_COLOR))
    table = "".join(rows)
    return _Html(
        f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">{table}</TABLE>'
    )


def _node_attributes(node: Node) -> dict[str, str]:
    """Shape and label of an operation's node, from what the node says of itself.

    A symbol of up to three characters (×, +, exp) in a circle; else an ellipse with the symbol, or,
    for a node with parameters, its name over each parameter's shape (``Affine1``,
    ``W 784×50``, ``b 50``). Plain labels where they suffice: Graphviz centres them in
    SVG (text-anchor middle), so they stay in place where a viewer substitutes a wider
    font; it anchors HTML-like labels at their left end.
    """
    if len(node.symbol) <= 3 and not node.param_shapes:
        # The book draws its short nodes (×, +, /, exp, dot, **2) as circles of one size.
        return {
            "shape": "circle",
            "fixedsize": "true",
            "width": "0.5",
            "fontsize": "20" if len(node.symbol) == 1 else "14",
            "label": node.symbol,
        }
    label: str = node.symbol
    if node.param_shapes:
        shapes = "<BR/>".join(
            f"{_esc(param)} {format_shape(shape)}" for param, shape in node.param_shapes.items()
        )
        label = _Html(f'<B>{_esc(node.title)}</B><BR/><FONT POINT-SIZE="11">{shapes}</FONT>')
    return {"shape": "ellipse", "margin": "0.05", "label": label}


def _end_name(value: Value) -> str:
    """The text of the end marker after an output: ``L`` for a loss, else its name."""
    if value.node is not None and value.node.is_loss:
        return "L"
    return "output" if value.auto else value.name  # an automatic v₃ says nothing to a reader


def _attrs(attributes: dict[str, str]) -> str:
    """``[key="value", label=<...>]``: HTML-like labels as they are, other values quoted."""
    parts = []
    for key, val in attributes.items():
        text = f"<{val}>" if isinstance(val, _Html) else _quote(val)
        parts.append(f"{key}={text}")
    return "[" + ", ".join(parts) + "]"


# A value's name in braces in a title, {price}: the title shows the value there.
_FIELD = re.compile(r"\{([^{}]+)\}")


def fill_title(title: str, graph: Graph) -> str:
    """``title`` with each ``{name}`` of a value of ``graph`` replaced by the value, as the
    picture writes it: ``{apple} × {apple count} = {price}`` → ``100 × 2 = 200``. Braces
    around anything else stay as they are."""

    def value(match: re.Match[str]) -> str:
        try:
            data = graph[match.group(1)].data
        except KeyError:
            return match.group(0)
        return summarize(data) if is_short(data) else match.group(0)

    return _FIELD.sub(value, title)


def to_dot(
    graph: Graph | Value | tuple[Graph, Value],
    *,
    show_grad: bool = True,
    title: str | None = None,
    lang: str = "en",
) -> str:
    """The graph as Graphviz DOT text (left to right), values and gradients on the arrows.

    Works on any recorded graph, before or after ``backward``: a value whose gradient is
    not known (None) shows its forward value only, and ``show_grad=False`` leaves every
    gradient out; a value, or ``(graph, loss)`` as ``net.record(x, t)`` returns it, is
    drawn after a backward from that value. ``title`` goes on top, each ``{name}`` of a
    value in it filled in (:func:`fill_title`). Each output (a value no node uses) ends in a
    marker with its name (``L`` for a loss). Render it with :func:`render`. With
    ``lang="ko"`` the legend is Korean and the text is set in a Korean font
    (:func:`chainrule.messages.korean_font`; :func:`hangul_problem` says what is missing).
    """
    graph = as_graph(graph, "to_dot")
    font = (korean_font() or _KOREAN_FONT) if lang == "ko" else _FONT
    lines = _dot_preamble(graph, font, title, show_grad, lang)
    lines += _dot_body(graph, show_grad)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_preamble(
    graph: Graph, font: str, title: str | None, show_grad: bool, lang: str
) -> list[str]:
    """The DOT text's opening lines: the layout, the font, and the title and legend."""
    has_grad = any(v.grad is not None for v in graph.values)
    # ordering=in keeps each node's inputs top to bottom in argument order (apple above
    # apple count, orange below them, as the book draws it); without it the crossing
    # minimiser may flip them.
    lines = [
        "digraph chainrule {",
        '  graph [rankdir=LR, nodesep=0.3, ranksep=0.3, bgcolor="white", pad=0.2, ordering=in];',
        f'  node [fontname="{font}", fontsize={_VALUE_FONT_SIZE}];',
        "  edge [arrowsize=0.7];",
    ]
    # Title and legend as one plain label: Graphviz centres plain text in SVG, so it stays
    # inside the picture where a viewer substitutes a wider font (HTML-like labels are
    # anchored at their left end and can run off the edge). One label only: a cluster
    # carrying a second one would lose the input order above.
    heading = [fill_title(title, graph)] if title else []
    if show_grad and has_grad:
        heading.append(message("legend", lang))
    if heading:
        lines.append(
            f'  graph [label={_quote(chr(10).join(heading))}, labelloc=t, fontname="{font}", '
            f"fontsize={_TITLE_FONT_SIZE}];"
        )
    return lines


def _dot_body(graph: Graph, show_grad: bool) -> list[str]:
    """The DOT statements of every node, value and arrow, each value once."""
    index = {v: i for i, v in enumerate(graph.values)}
    emitted: set[int] = set()
    lines: list[str] = []

    def emit(value: Value) -> None:
        emitted.add(index[value])
        lines.extend(_value_statements(value, index[value], show_grad))

    used = {v for node in graph.nodes for v in node.inputs}
    for k, node in enumerate(graph.nodes):
        # Inputs first, in the order the node takes them, so the first input is drawn on
        # top (apple above apple count, as in the book).
        for value in node.inputs:
            if index[value] not in emitted:
                emit(value)
        attributes = _node_attributes(node)
        attributes["tooltip"] = node.name
        lines.append(f'  "n{k}" {_attrs(attributes)};')
        for value in node.inputs:
            port = "" if value.constant else ":p:e"
            lines.append(f'  "v{index[value]}"{port} -> "n{k}";')
        emit(node.output)
        lines.append(f'  "n{k}" -> "v{index[node.output]}":p:w [arrowhead=none];')
    for i, value in enumerate(graph.values):
        if i not in emitted:
            emit(value)  # an input nothing used: drawn alone
        if value.node is not None and value not in used:
            end = {"shape": "plaintext", "margin": "0.2,0.05", "label": _end_name(value)}
            lines.append(f'  "o{i}" {_attrs(end)};')
            lines.append(f'  "v{i}":p:e -> "o{i}";')
    return lines


def _value_statements(value: Value, i: int, show_grad: bool) -> list[str]:
    """The DOT statements of the ``i``-th value: its label and, for an input, its name."""
    if value.constant:
        # A constant is its number beside the node that uses it: no arrow of its own,
        # since no gradient flows back to it.
        constant = {"shape": "plaintext", "margin": "0.05,0.02", "label": value.name}
        return [f'  "v{i}" {_attrs(constant)};']
    shown = summarize(value.data) if is_short(value.data) else _value_lines(value.data)[0]
    tooltip = f"{value.name}: {shown}"
    attributes = {"shape": "plain", "tooltip": tooltip, "label": _value_label(value, show_grad)}
    lines = [f'  "v{i}" {_attrs(attributes)};']
    if value.node is None:
        # An input: its name in plain text, then the arrow carrying its value.
        # A wide margin leaves room for a viewer's wider substitute font in SVG.
        name = {"shape": "plaintext", "margin": "0.2,0.05", "label": value.name}
        lines.append(f'  "i{i}" {_attrs(name)};')
        lines.append(f'  "i{i}" -> "v{i}":p:w [arrowhead=none];')
    return lines


def value_table(graph: Graph) -> str:
    """The graph as an HTML table, for a notebook without Graphviz: each value in recording
    order, how it was computed, its value and (after backward) its gradient in red."""
    rows = []
    for value in graph.values:
        if value.constant and value.auto:
            continue
        node = value.node
        made = (
            "input" if node is None else f"{node.symbol} ({', '.join(v.name for v in node.inputs)})"
        )
        grad = "" if value.grad is None else summarize(value.grad)
        rows.append(
            f"<tr><td>{_esc(value.name)}</td><td>{_esc(made)}</td>"
            f"<td>{_esc(summarize(value.data))}</td>"
            f'<td style="color:{GRAD_COLOR}">{_esc(grad)}</td></tr>'
        )
    head = "<tr><th>value</th><th>computed by</th><th>forward</th><th>gradient</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


# ---------------------------------------------------------------------------------------
# Rendering


def hangul_problem() -> str | None:
    """Why a picture's Hangul would not show, or None: no Korean font installed, or only
    graphviz-pure to draw (its PNGs draw Hangul as boxes)."""
    if korean_font() is None:
        return (
            f"no font with Hangul is installed (looked for {_KOREAN_FONT} through fc-list); "
            "install one (apt-get install fonts-nanum), or Hangul shows as boxes"
        )
    program = find_renderer()
    if program is not None and Path(program).name == "graphviz-pure":
        return (
            "graphviz-pure draws Hangul as boxes in PNG and measures it wrongly; install "
            "Graphviz's dot (apt-get install graphviz), which sets it in "
            f"{korean_font()}"
        )
    return None


def _program_dirs() -> list[str]:
    """Folders of this Python's own scripts: where pip put graphviz-pure's program.

    A virtual environment's ``bin`` is on PATH only while it is activated; running
    ``.venv/bin/chainrule`` directly must still find ``.venv/bin/graphviz-pure``.
    """
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    return [f for f in dict.fromkeys(folders) if f]


def notebook_view(graph: Graph, kind: str) -> str | None:
    """A notebook's ``kind`` of ``graph``: its SVG picture where a Graphviz renderer is
    installed, else (``"html"``) the table of its values and gradients."""
    if find_renderer() is None:
        return value_table(graph) if kind == "html" else None
    return render(to_dot(graph), format="svg")._repr_svg_() if kind == "svg" else None


def find_renderer() -> str | None:
    """The path of a Graphviz program that can render DOT, or None.

    ``dot``, then ``graphviz-pure``, on PATH; else either next to the running Python (a
    virtual environment that is not activated). ``$CHAINRULE_DOT`` (a name or a path)
    replaces the two names.
    """
    override = os.environ.get("CHAINRULE_DOT")
    names = (override,) if override else RENDERERS
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for folder in _program_dirs():
        for name in names:
            found = shutil.which(name, path=folder)
            if found:
                return found
    return None


def _not_found_message(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    dot_file = path.with_suffix(".dot").name
    return (
        f"cannot draw {path.name}: no Graphviz renderer found (looked for "
        f"{' and '.join(RENDERERS)}); write {dot_file} instead, or install Graphviz's dot "
        "(pip install graphviz-pure, or apt-get install graphviz) then run: "
        f"dot -T{fmt} {dot_file} -o {path.name}"
    )


@overload
def render(
    dot_text: str | Graph | Value | tuple[Graph, Value],
    path: None = None,
    *,
    dpi: int = 144,
    format: str = "svg",
) -> Picture: ...


@overload
def render(
    dot_text: str | Graph | Value | tuple[Graph, Value],
    path: str | os.PathLike[str],
    *,
    dpi: int = 144,
    format: str = "svg",
) -> Path: ...


def render(
    dot_text: str | Graph | Value | tuple[Graph, Value],
    path: str | os.PathLike[str] | None = None,
    *,
    dpi: int = 144,
    format: str = "svg",
) -> Path | Picture:
    """Write ``dot_text`` to ``path``: ``.dot``/``.gv`` as text, ``.svg`` or ``.png`` drawn.

    ``dot_text`` may also be what :func:`to_dot` takes (a graph, or ``(graph, loss)`` as
    ``net.record(x, t)`` returns it), drawn with its defaults.

    Drawing runs the program :func:`find_renderer` finds, with the DOT text on its
    standard input; ``dpi`` sets a PNG's resolution. The file is written atomically.
    Returns the path. With no path, returns the drawing (``format`` ``"svg"`` or
    ``"png"``) as a :class:`~chainrule.viz.display.Picture`, which a notebook shows.

    Raises:
        ArgumentError: another extension.
        RendererNotFound: SVG or PNG asked for, and no Graphviz program is installed.
        RenderError: the program failed or ran longer than a minute.
    """
    if not isinstance(dot_text, str):
        dot_text = to_dot(dot_text)
    if path is None:
        return Picture(_draw(dot_text, Path(f"graph.{format}"), dpi), format)
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArgumentError(f"cannot write {path.name!r}; use a .dot, .svg or .png name")
    if fmt in ("dot", "gv"):
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(dot_text)
        return path
    drawn = _draw(dot_text, path, dpi)
    with atomic_write(path) as handle:
        handle.write(drawn)
    return path


def _draw(dot_text: str, path: Path, dpi: int) -> bytes:
    """The picture ``path``'s suffix names (svg or png), drawn by the Graphviz program."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ArgumentError(f"cannot draw {fmt!r}; a picture is svg or png")
    program = find_renderer()
    if program is None:
        raise RendererNotFound(_not_found_message(path))
    command = [program, f"-T{fmt}"]
    if fmt == "png":
        command.append(f"-Gdpi={int(dpi)}")
    try:
        result = subprocess.run(
            command,
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"{Path(program).name} did not finish drawing {path.name} in {RENDER_TIMEOUT_S:g} s"
        ) from None
    except OSError as error:
        raise RenderError(f"could not run {program}: {error}") from None
    if result.returncode != 0 or not result.stdout:
        errors = result.stderr.decode("utf-8", "replace").strip().splitlines()
        why = errors[-1] if errors else f"exit status {result.returncode}"
        raise RenderError(f"{Path(program).name} failed to draw {path.name}: {why}")
    return result.stdout
