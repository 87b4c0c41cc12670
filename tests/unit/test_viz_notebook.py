"""What a notebook shows, through IPython's own display formatter (as Jupyter calls it):
a graph as its picture (or a table without Graphviz), a trace as formatted text, and the
pictures of render, plot_history and plot_weights without a file."""

import numpy as np
import pytest

from chainrule.examples import buy_apple_graph
from chainrule.explain import Trace, explain
from chainrule.gradcheck import check_layer
from chainrule.layers import MulLayer
from chainrule.viz.diagram import find_renderer, render, to_dot
from chainrule.viz.display import Picture

formatters = pytest.importorskip("IPython.core.formatters")
needs_renderer = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer")


def shown(obj):
    data, _ = formatters.DisplayFormatter().format(obj)
    return data


@needs_renderer
def test_a_graph_shows_as_its_picture_with_values_and_gradients():
    data = shown(buy_apple_graph())
    svg = data["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for number in ("220", "2.2", "110", "200", "apple count"):
        assert f">{number}<" in svg, number
    assert "text/html" not in data
    assert data["text/plain"].startswith("<Graph of 2 nodes; inputs apple, apple count, tax")


def test_without_graphviz_a_graph_shows_as_a_table(monkeypatch):
    monkeypatch.setattr("chainrule.viz.diagram.find_renderer", lambda: None)
    data = shown(buy_apple_graph())
    assert "image/svg+xml" not in data
    table = data["text/html"]
    assert "<td>apple price</td><td>× (apple, apple count)</td><td>200</td>" in table
    assert '<td style="color:#c00000">2.2</td>' in table


def test_a_trace_prints_as_text_and_shows_as_formatted_text():
    trace = explain(buy_apple_graph())
    assert isinstance(trace, Trace) and isinstance(trace, str)
    data = shown(trace)
    assert data["text/plain"] == str(trace)  # the text itself, not its quoted repr
    page = data["text/html"]
    assert page.startswith("<pre") and "\x1b" not in page
    assert "<b>[1] price = apple price × tax" in page
    assert 'dx = dout · y = 1.1 · 2 = <span style="color:#c00000">2.2</span>' in page


@needs_renderer
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_without_a_path_returns_a_picture(fmt, tmp_path):
    picture = render(to_dot(buy_apple_graph()), format=fmt)
    assert isinstance(picture, Picture)
    data = shown(picture)
    if fmt == "png":
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert ">220<" in data["image/svg+xml"]
    assert picture.save(tmp_path / f"g.{fmt}").read_bytes() == picture.data
    with pytest.raises(ValueError, match="cannot save"):
        picture.save(tmp_path / "g.pdf")


def test_training_curves_and_weights_return_pictures_without_a_path():
    pytest.importorskip("matplotlib")
    from chainrule.train import Evaluation, History
    from chainrule.viz.curves import plot_history
    from chainrule.viz.weights import plot_weights

    history = History(losses=[2.3, 1.2, 0.7], evaluations=[Evaluation(1, 3, 0.8, 0.7, 0.5, 0.75)])
    for picture in (plot_history(history), plot_weights(np.random.default_rng(0).random((16, 4)))):
        assert shown(picture)["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_a_gradient_check_shows_as_its_table():
    report = check_layer(MulLayer(), np.ones(3), np.full(3, 2.0))
    assert shown(report)["text/plain"] == report.format()
