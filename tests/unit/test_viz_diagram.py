"""Drawing a recorded graph: DOT text with values above and gradients below the arrows.

The SVG and PNG tests run once per Graphviz program installed (Graphviz's dot,
graphviz-pure) and are skipped where there is none.
"""

import html
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule.viz.diagram as viz
from chainrule import errors
from chainrule.examples import buy_apple_graph, buy_apple_orange_graph
from chainrule.explain import example_graph
from chainrule.formatting import format_number
from chainrule.graph import Graph
from chainrule.viz.diagram import (
    GRAD_COLOR,
    RendererNotFound,
    RenderError,
    find_renderer,
    render,
    to_dot,
)

# The apple and apple-orange examples of "Deep Learning from Scratch", chapter 5:
# forward values and backward gradients as the book gives them.
APPLE_VALUES = ["100", "2", "1.1", "200", "220"]
APPLE_GRADS = ["2.2", "110", "200", "1.1", "1"]
APPLE_ORANGE_VALUES = ["100", "2", "150", "3", "1.1", "200", "450", "650", "715"]
APPLE_ORANGE_GRADS = ["2.2", "110", "3.3", "165", "1.1", "1.1", "1.1", "650", "1"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def value_cells(dot):
    """Per value node: (text above the line, text below it or None), tags stripped."""
    cells = []
    for label in re.findall(r'"v\d+" \[.*?label=<(<TABLE.*?</TABLE>)>\];', dot):
        rows = re.findall(r"<TR>(.*?)</TR>", label)
        text = [html.unescape(re.sub(r"<[^>]+>", " ", r)).split() for r in rows]
        above = " ".join(text[0])
        below = " ".join(text[2]) if len(rows) == 3 else None
        cells.append((above, below))
    return cells


def gradient_texts(dot):
    """Every text drawn in the gradient colour."""
    pattern = rf'<FONT COLOR="{re.escape(GRAD_COLOR)}">(.*?)</FONT></TD>'
    return [html.unescape(re.sub(r"<[^>]+>", " ", m)).split()[0] for m in re.findall(pattern, dot)]


def test_apple_dot_holds_every_node_value_and_gradient():
    dot = to_dot(buy_apple_graph())
    assert dot.startswith("digraph") and "rankdir=LR" in dot
    for name in ("apple", "apple count", "tax", "price"):
        assert f'label="{name}"' in dot
    assert dot.count('label="×"') == 2
    cells = value_cells(dot)
    assert sorted(above for above, _ in cells) == sorted(APPLE_VALUES)
    assert sorted(below for _, below in cells) == sorted(APPLE_GRADS)
    assert sorted(gradient_texts(dot)) == sorted(APPLE_GRADS)
    # Each value sits on its own arrow: value above, its own gradient below.
    assert ("100", "2.2") in cells and ("2", "110") in cells and ("1.1", "200") in cells
    assert ("220", "1") in cells  # the output, before the end marker


def test_apple_orange_dot_holds_the_books_numbers():
    g = buy_apple_orange_graph()
    dot = to_dot(g, title="apples & oranges")
    cells = value_cells(dot)
    assert sorted(above for above, _ in cells) == sorted(APPLE_ORANGE_VALUES)
    assert sorted(below for _, below in cells) == sorted(APPLE_ORANGE_GRADS)
    for pair in [("150", "3.3"), ("3", "165"), ("1.1", "650"), ("715", "1"), ("450", "1.1")]:
        assert pair in cells
    assert dot.count('label="×"') == 3 and dot.count('label="+"') == 1
    assert 'label="apples & oranges\\nforward value above each arrow' in dot  # title, legend


def test_every_value_of_a_graph_is_drawn_with_its_gradient():
    g = buy_apple_orange_graph()
    cells = value_cells(to_dot(g))
    expected = sorted((format_number(v.data), format_number(v.grad)) for v in g.values)
    assert sorted(cells) == expected


def test_no_grad_form_has_no_gradient_labels():
    dot = to_dot(buy_apple_orange_graph(), show_grad=False)
    assert GRAD_COLOR not in dot and "red" not in dot
    cells = value_cells(dot)
    assert all(below is None for _, below in cells)
    assert sorted(above for above, _ in cells) == sorted(APPLE_ORANGE_VALUES)
    for grad in ("2.2", "3.3", "165", "110"):
        assert f">{grad}<" not in dot


def test_graph_before_backward_shows_values_only():
    g = Graph()
    price = g.input(100, "apple") * g.input(2, "count")
    dot = to_dot(g)
    assert GRAD_COLOR not in dot
    assert ("200", None) in value_cells(dot)
    price.backward()
    assert ("200", "1") in value_cells(to_dot(g))


def test_scalars_are_compact():
    g = Graph()
    total = g.input(0.1, "a") + g.input(0.2, "b")
    (total * g.input(1.1, "c")).backward()
    dot = to_dot(g)
    assert repr(0.1 + 0.2) not in dot and repr((0.1 + 0.2) * 1.1) not in dot  # ...0004, ...0007
    assert ("0.3", "1.1") in value_cells(dot)


def test_output_end_marker():
    dot = to_dot(buy_apple_graph())
    (end,) = re.findall(r'"o(\d+)" \[shape="plaintext", margin="[^"]*", label="(.*?)"\]', dot)
    assert end[1] == "price"
    assert f'"v{end[0]}":p:e -> "o{end[0]}";' in dot


def test_names_are_escaped():
    g = Graph()
    (g.input(2.0, 'a<b & "c" \\') * g.input(3.0, "d")).backward()
    dot = to_dot(g, title="<x>")
    assert 'label="a<b & \\"c\\" \\\\"' in dot and 'label="<x>\\n' in dot
    assert 'tooltip="a<b & \\"c\\" \\\\: 2"' in dot  # a quoted DOT string


def test_fan_out_draws_one_value_with_two_arrows():
    g = Graph()
    a = g.input(2.0, "a")
    (a * g.input(5.0, "x") + a * g.input(7.0, "y")).backward()
    dot = to_dot(g)
    a_id = next(i for i, v in enumerate(g.values) if v is a)
    assert dot.count(f'"v{a_id}":p:e -> ') == 2
    assert ("2", "12") in value_cells(dot)


@pytest.fixture(scope="module")
def net_graph():
    return example_graph("two-layer-net")


def test_layer_graph_shows_layers_parameter_and_signal_shapes(net_graph):
    dot = to_dot(net_graph, title="TwoLayerNet")
    assert "<B>Affine1</B>" in dot and "<B>Affine2</B>" in dot
    assert "W 784×50<BR/>b 50" in dot and "W 50×10<BR/>b 10" in dot
    assert 'label="ReLU"' in dot and 'label="Softmax\\nwith Loss"' in dot
    cells = value_cells(dot)
    shapes = {above.split()[0]: below for above, below in cells if below}
    # Signals N×784 → N×50 → N×50 → N×10, each with a gradient of the same shape.
    for shape in ("2×784", "2×50", "2×10"):
        assert shapes[shape].split()[0] == shape
    assert any(above.startswith("2×784 min 0") for above, _ in cells)
    loss = net_graph.values[-1]
    assert (format_number(loss.data), "1") in cells
    assert re.search(r'"o\d+" \[shape="plaintext", margin="[^"]*", label="L"\]', dot)
    labels = net_graph["t"].data
    assert ("[" + ", ".join(str(int(v)) for v in labels) + "]", None) in cells


def test_sigmoid_and_other_layers_have_labels():
    g = Graph()
    x = g.input(np.array([-1.0, 0.5, 2.0]), "x")
    x.sigmoid().relu().backward(np.ones(3))
    dot = to_dot(g)
    assert 'label="sigmoid"' in dot and 'label="ReLU"' in dot
    # A tiny array is written out in full, gradient too.
    assert any(above.startswith("[-1, 0.5, 2]") for above, _ in value_cells(dot))


def test_each_value_line_reaches_a_point_past_its_port():
    # dot ends an edge a point outside the port; the black line must reach that point.
    end = '<TD WIDTH="1" HEIGHT="1" CELLPADDING="0" BGCOLOR="black"></TD>'
    port = '<TD PORT="p" HEIGHT="1" CELLPADDING="0" BGCOLOR="black"></TD>'
    for show_grad in (True, False):
        dot = to_dot(buy_apple_orange_graph(), show_grad=show_grad)
        assert dot.count(f"<TR>{end}{port}{end}</TR>") == len(APPLE_ORANGE_VALUES)


def test_render_errors_live_in_chainrule_errors():
    assert RendererNotFound is errors.RendererNotFound and RenderError is errors.RenderError
    assert issubclass(RenderError, errors.ChainruleError)


# ---------------------------------------------------------------------------------------
# Rendering


def test_render_dot_writes_text(tmp_path):
    dot = to_dot(buy_apple_graph())
    out = render(dot, tmp_path / "apple.dot")
    assert out == tmp_path / "apple.dot" and out.read_text(encoding="utf-8") == dot


def test_render_refuses_other_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"\.dot, \.svg or \.png"):
        render("digraph {}", tmp_path / "apple.pdf")
    assert not (tmp_path / "apple.pdf").exists()


def test_missing_renderer_gives_a_clear_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAINRULE_DOT", raising=False)
    monkeypatch.setattr(viz.shutil, "which", lambda *args, **kwargs: None)
    assert find_renderer() is None
    target = tmp_path / "graph.png"
    with pytest.raises(RendererNotFound) as info:
        render(to_dot(buy_apple_graph()), target)
    message = str(info.value)
    assert "\n" not in message
    assert "pip install graphviz-pure" in message and "apt-get install graphviz" in message
    assert "dot -Tpng graph.dot -o graph.png" in message
    assert isinstance(info.value, RuntimeError)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def _fake_program(folder, name, body):
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    program.chmod(0o755)
    return program


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses a /bin/sh script")


@posix_only
def test_renderer_next_to_python_is_found_without_path(tmp_path, monkeypatch):
    # A virtual environment that is not activated: its bin/ is not on PATH.
    monkeypatch.delenv("CHAINRULE_DOT", raising=False)
    venv_bin = tmp_path / "venv" / "bin"
    program = _fake_program(venv_bin, "graphviz-pure", "exit 0")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(viz.sysconfig, "get_path", lambda name: str(venv_bin))
    monkeypatch.setattr(viz.sys, "executable", str(venv_bin / "python"))
    assert find_renderer() == str(program)


@posix_only
def test_chainrule_dot_variable_picks_the_program(tmp_path, monkeypatch):
    program = _fake_program(tmp_path, "my-dot", "cat >/dev/null; printf 'drawn'")
    monkeypatch.setenv("CHAINRULE_DOT", str(program))
    assert find_renderer() == str(program)
    out = render("digraph {}", tmp_path / "g.svg")
    assert out.read_bytes() == b"drawn"


@posix_only
def test_failing_renderer_raises_and_keeps_the_old_file(tmp_path, monkeypatch):
    program = _fake_program(tmp_path, "bad-dot", "cat >/dev/null; echo 'syntax error' >&2; exit 3")
    monkeypatch.setenv("CHAINRULE_DOT", str(program))
    target = tmp_path / "g.svg"
    target.write_bytes(b"old")
    with pytest.raises(RenderError, match="syntax error"):
        render("digraph {}", target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-dot", "g.svg"]


@posix_only
def test_slow_renderer_times_out(tmp_path, monkeypatch):
    program = _fake_program(tmp_path, "slow-dot", "exec sleep 10")
    monkeypatch.setenv("CHAINRULE_DOT", str(program))
    monkeypatch.setattr(viz, "RENDER_TIMEOUT_S", 0.5)
    with pytest.raises(RenderError, match="did not finish"):
        render("digraph {}", tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def _renderers():
    found = []
    saved = os.environ.pop("CHAINRULE_DOT", None)
    try:
        for name in viz.RENDERERS:
            os.environ["CHAINRULE_DOT"] = name
            if find_renderer() is not None:
                found.append(name)
    finally:
        os.environ.pop("CHAINRULE_DOT", None)
        if saved is not None:
            os.environ["CHAINRULE_DOT"] = saved
    return found or [None]


@pytest.fixture(params=_renderers())
def renderer(request, monkeypatch):
    if request.param is None:
        pytest.skip("no Graphviz renderer installed (dot or graphviz-pure)")
    monkeypatch.setenv("CHAINRULE_DOT", request.param)
    return request.param


def svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return [t.text.strip() for t in root.iter() if t.tag.endswith("text") and t.text]


def test_svg_parses_and_holds_the_labels(renderer, tmp_path):
    path = render(to_dot(buy_apple_orange_graph(), title="apple-orange"), tmp_path / "ao.svg")
    texts = svg_texts(path)
    for label in ["apple", "apple count", "orange", "orange count", "tax", "price", "×", "+"]:
        assert label in texts, label
    for number in set(APPLE_ORANGE_VALUES + APPLE_ORANGE_GRADS):
        assert number in texts, number
    root = ET.parse(path).getroot()
    red = [
        t.text.strip()
        for t in root.iter()
        if t.tag.endswith("text") and t.get("fill", "").lower() == GRAD_COLOR
    ]
    assert sorted(red) == sorted(APPLE_ORANGE_GRADS)


def test_inputs_are_drawn_top_to_bottom_in_argument_order(renderer, tmp_path):
    # As the book draws it: apple, apple count, orange, orange count down the left; tax
    # below the sum it multiplies.
    path = render(to_dot(buy_apple_orange_graph(), title="apple-orange"), tmp_path / "ao.svg")
    y = {
        t.text.strip(): float(t.get("y"))
        for t in ET.parse(path).getroot().iter()
        if t.tag.endswith("text") and t.text
    }
    assert y["apple"] < y["apple count"] < y["orange"] < y["orange count"]
    assert y["+"] < y["tax"]


def test_odd_names_render(renderer, tmp_path):
    g = Graph()
    (g.input(2.0, 'a<b & "c" \\') * g.input(3.0, "d")).backward()
    texts = svg_texts(render(to_dot(g, title="<x>"), tmp_path / "odd.svg"))
    assert 'a<b & "c" \\' in texts and "<x>" in texts


def test_svg_no_grad_has_no_red(renderer, tmp_path):
    path = render(to_dot(buy_apple_graph(), show_grad=False), tmp_path / "a.svg")
    assert GRAD_COLOR not in path.read_text(encoding="utf-8").lower()
    texts = svg_texts(path)
    assert "220" in texts and "2.2" not in texts and "110" not in texts


def _numbers(text):
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def line_ends_off_their_line(svg_path):
    """Edge ends that are not at an end of the black line of the value they leave or reach:
    a gap, or a spur of the line past the point where the edge turns away."""
    root = ET.parse(svg_path).getroot()
    groups = {
        g.findtext("{*}title"): g for g in root.iter() if g.tag.endswith("g") and g.get("class")
    }
    lines = {}
    for title, group in groups.items():
        xs = [
            x
            for poly in group.iter()
            if poly.tag.endswith("polygon") and poly.get("fill") == "black"
            for x in _numbers(poly.get("points"))[::2]
        ]
        if re.fullmatch(r"v\d+", title or "") and xs:
            lines[title] = (min(xs), max(xs))
    misses = []
    for title, group in groups.items():
        tail, arrow, head = (title or "").partition("->")
        path = next((p for p in group.iter() if p.tag.endswith("path")), None)
        if not arrow or path is None:
            continue
        d = _numbers(path.get("d"))
        for end, x in ((tail, d[0]), (head, d[-2])):
            name = end.split(":")[0]
            if name in lines and min(abs(x - end) for end in lines[name]) > 0.01:
                misses.append((title, x, lines[name]))
    return misses


@pytest.mark.parametrize("show_grad", [True, False])
def test_arrows_are_whole(renderer, tmp_path, show_grad):
    # The values of one rank differ in width (2 beside 100; t beside a 2×10 array), and
    # dot ends edges a point away from a port: each must still meet its line's end.
    for graph in (buy_apple_orange_graph(), example_graph("two-layer-net")):
        path = render(to_dot(graph, show_grad=show_grad), tmp_path / "g.svg")
        assert line_ends_off_their_line(path) == []


def png_size(data):
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def test_png_has_signature_and_sensible_size(renderer, tmp_path):
    path = render(to_dot(buy_apple_orange_graph()), tmp_path / "ao.png")
    width, height = png_size(path.read_bytes())
    assert 600 < width < 3000 and 250 < height < 1500
    assert width > height  # laid out left to right


def test_layer_graph_renders(renderer, tmp_path, net_graph):
    path = render(to_dot(net_graph), tmp_path / "net.svg")
    texts = svg_texts(path)
    for label in ["Affine1", "Affine2", "ReLU", "W 784×50", "2×784", "2×50", "2×10", "L"]:
        assert label in texts, label


def test_a_small_matrix_is_drawn_row_under_row():
    dot = viz.to_dot(example_graph("affine"))
    assert "[0.1, 0.2, 0.3]<BR/>[0.4, 0.5, 0.6]" in dot  # W
    assert "[13, 17, 21]<BR/>[18, 24, 30]" in dot  # dW = Xᵀ · dY, worked in test_book_figures
    assert "min" not in dot


def test_control_characters_in_names_are_drawn_as_their_symbols():
    g = Graph()
    (g.input(1.0, 'a\x00"b\x1b') * 2).named("c\x07\\").backward()
    dot = viz.to_dot(g, title="t\x01")
    assert not any(ord(c) < 0x20 and c != "\n" for c in dot)
    assert '"a␀\\"b␛"' in dot and '"c␇\\\\"' in dot and "t␁" in dot
