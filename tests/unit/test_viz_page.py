"""The interactive page: one self-contained HTML file, its formulas the same table the
tests hold against the nodes, and in a real browser (Debian's chromium, driven by
selenium) an input changed, the values and gradients recomputed, the backward stepped."""

import json
import math
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from ci_tools import needs_module, needs_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.cli import main
from chainrule.errors import StateError
from chainrule.examples import affine_graph, build, buy_apple_graph, sigmoid_graph
from chainrule.explain import explain
from chainrule.graph import Graph
from chainrule.layers import AddLayer, MulLayer, Relu, Sigmoid
from chainrule.messages import korean_font
from chainrule.networks import TwoLayerNet
from chainrule.primitives import Div, Exp, Log, Neg, Pow, Reciprocal, Sub
from chainrule.viz.diagram import find_renderer, render, to_dot
from chainrule.viz.page import SCALAR_RULES, page_html, write_page

pytestmark = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer")

LAYERS = {
    "MulLayer": MulLayer,
    "AddLayer": AddLayer,
    "Sub": Sub,
    "Neg": Neg,
    "Div": Div,
    "Reciprocal": Reciprocal,
    "Pow": lambda: Pow(3),
    "Exp": Exp,
    "Log": Log,
    "Relu": Relu,
    "Sigmoid": Sigmoid,
}


def test_every_rule_of_the_script_is_the_nodes_own_math():
    assert set(SCALAR_RULES) == set(LAYERS)
    functions = {"exp": math.exp, "log": math.log, "max": max}
    for name, (forward, locals_) in SCALAR_RULES.items():
        for x, y in ((0.7, 1.9), (2.5, -0.4), (-1.3, 0.8)):
            layer = LAYERS[name]()
            args = (x, y)[: len(locals_)]
            if name in ("Log", "Reciprocal", "Pow"):
                args = (abs(x),)
            out = layer.forward(*args)
            scope = {**functions, "x": args[0], "y": args[-1], "k": getattr(layer, "k", None)}
            assert eval(forward, scope) == pytest.approx(float(out), rel=1e-12), name
            grads = layer.backward(1.0)
            grads = grads if isinstance(grads, tuple) else (grads,)
            scope["out"] = float(out)
            for rule, grad in zip(locals_, grads):
                assert eval(rule, scope) == pytest.approx(float(grad), rel=1e-12), (name, rule)


def test_the_page_is_one_file_with_nothing_from_outside(tmp_path):
    path = write_page(buy_apple_graph(), tmp_path / "apple.html", title="apples")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<script>" in text
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", text)
    # The SVG's namespaces are names, not addresses it loads.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert '"live": true' in text and "<title>apples</title>" in text


def test_a_graph_of_arrays_carries_its_recorded_trace():
    text = page_html(affine_graph())
    assert '"live": false' in text
    block = explain(affine_graph()).split("\n\n")[4]  # the first node's block
    assert block.splitlines()[1].strip() in text


def test_the_command_line_writes_a_page(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["graph", "sigmoid", "-o", str(out)]) == 0
    assert "Figure 5-19" in out.read_text(encoding="utf-8")


def embedded(text):
    """The page's data as a browser reads it: the script element's text (it ends at the
    first ``</script``; no entity is decoded there), parsed by JSON.parse's rules."""
    start = text.index('<script id="graph-data" type="application/json">')
    body = text[text.index(">", start) + 1 :]
    body = body[: body.lower().index("</script")]

    def refuse(constant):
        raise ValueError(f"bare {constant} in the page's JSON")

    return body, json.loads(body, parse_constant=refuse)


def test_a_name_cannot_end_or_comment_out_the_pages_script():
    g = Graph()
    x = g.input(2.0, "<!--<script>")
    (x * g.input(3.0, "</script><b>&amp;\u2028")).named("a > b").backward()
    body, data = embedded(page_html(g))
    assert "<" not in body and ">" not in body and "&" not in body and "\u2028" not in body
    names = [v["name"] for v in data["values"]]
    assert names == ["<!--<script>", "</script><b>&amp;\u2028", "a > b"]


def test_non_finite_numbers_reach_the_page_as_the_trace_writes_them():
    g = Graph()
    x, big = g.input(float("nan"), "x"), g.input(1000.0, "big")
    with np.errstate(all="ignore"):
        (x * big.exp() + g.input(-1.0, "neg").log()).named("y").backward()
    _, data = embedded(page_html(g))
    shown = {v["name"]: v["data"] for v in data["values"]}
    assert shown["x"] == "nan" and shown["v₁"] == "inf" and shown["y"] == "nan"
    assert shown["big"] == 1000.0 and "v₁ = exp(big) = exp(1000) = inf" in explain(g)


def test_the_page_and_the_picture_take_what_record_returns(tmp_path):
    net = TwoLayerNet(4, 3, 2, seed=0)
    x, t = np.arange(8.0).reshape(2, 4) / 8, np.array([0, 1])
    path = write_page(net.record(x, t), tmp_path / "net.html")
    _, data = embedded(path.read_text(encoding="utf-8"))
    assert data["topName"] == "L" and len(data["ran"]) == 4
    assert to_dot(net.record(x, t)).startswith("digraph")
    assert render(net.record(x, t), format="svg").data.startswith(b"<?xml")


def test_a_page_before_backward_names_the_page_not_explain(tmp_path):
    g = Graph()
    g.input(1.0, "x") * 2
    with pytest.raises(StateError, match=r"^write_page: the graph has no gradients yet"):
        write_page(g, tmp_path / "p.html")
    assert not (tmp_path / "p.html").exists()


def test_control_characters_in_names_give_a_valid_svg():
    g = Graph()
    x = g.input(1.0, "nul\x00 bell\x07 esc\x1b")
    (x * 2).named("tab\tdel\x7f").backward()
    svg = render(to_dot(g), format="svg").data
    root = ET.fromstring(svg)  # raises on a character XML forbids
    text = "".join(root.itertext())
    assert "nul␀ bell␇ esc␛" in text and "tab␉del␡" in text


names = st.text(
    alphabet=st.sampled_from(list("ab<>&\"'/!-\x00\x01\x1b\x7f\u2028\u2029사과 \n\\{}")),
    min_size=1,
    max_size=12,
).filter(lambda name: name.strip())
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e-308, 0.0])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(names, min_size=3, max_size=3, unique=True), st.lists(numbers, min_size=2, max_size=2)
)
def test_any_names_and_values_give_a_page_whose_data_and_picture_parse(names, numbers):
    g = Graph()
    a, b = g.input(numbers[0], names[0]), g.input(numbers[1], names[1])
    with np.errstate(all="ignore"):
        (a * b).named(names[2]).backward()
    text = page_html(g, title=names[0])
    _, data = embedded(text)
    assert [v["name"] for v in data["values"]] == names
    for value, shown in zip(g.values, data["values"]):
        number = float(value.data)
        if math.isfinite(number):
            assert shown["data"] == number
        else:
            assert shown["data"] == ("nan" if math.isnan(number) else f"{number:g}")
    ET.fromstring(text[text.index("<svg") : text.index("</svg>") + 6])


# ---------------------------------------------------------------------------------------
# In a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = needs_module("selenium.webdriver", "selenium is not installed")
    needs_tool("chromium", CHROMIUM, "no chromium (apt-get install chromium)")
    needs_tool("chromedriver", DRIVER, "no chromedriver (apt-get install chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def open_page(browser, tmp_path, graph, name):
    path = write_page(graph, tmp_path / f"{name}.html")
    browser.get(path.as_uri())
    return browser


def svg_value(browser, index, gradient=False):
    """The number drawn on value ``index``'s arrow: its forward value, or its gradient."""
    red = str(gradient).lower()
    script = (
        "const g = [...document.querySelectorAll('#picture g.node')]"
        f".find((n) => n.querySelector('title').textContent === 'v{index}');"
        "const t = [...g.querySelectorAll('text')]"
        f".filter((e) => (e.getAttribute('fill') === '#c00000') === {red});"
        "return t.length ? t[0].textContent : null;"
    )
    return browser.execute_script(script)


def click(browser, button, times=1):
    for _ in range(times):
        browser.find_element("id", button).click()


def step_text(browser):
    return browser.find_element("id", "step-text").text


def test_the_apple_page_recomputes_and_steps_backward(browser, tmp_path):
    graph = buy_apple_graph()
    open_page(browser, tmp_path, graph, "apple")
    assert browser.get_log("browser") == []
    # At first every gradient is shown and the last step is the trace's own text.
    trace_block = explain(graph).split("\n\n")[-2]
    assert step_text(browser) == trace_block.rstrip("\n")
    box = browser.find_element("id", "input-0")  # apple
    box.clear()
    box.send_keys("150")
    price = graph.values.index(graph["price"])
    assert svg_value(browser, price) == "330"
    assert svg_value(browser, graph.values.index(graph["tax"]), gradient=True) == "300"
    click(browser, "start")
    assert browser.find_element("id", "step-count").text == "step 0 of 2"
    assert step_text(browser) == "Start: ∂price/∂price = 1"
    assert browser.find_elements("css selector", "g.node.hl") == []
    click(browser, "next")
    highlighted = browser.find_elements("css selector", "g.node.hl title")
    assert [t.get_attribute("textContent") for t in highlighted] == ["n1"]  # the tax node
    assert "dy = dout · x = 1 · 300 = 300" in step_text(browser)
    click(browser, "next")
    assert "to apple count     dy = dout · x = 1.1 · 150 = 165" in step_text(browser)
    assert browser.get_log("browser") == []


def test_the_sigmoid_page_follows_the_chain_for_any_x(browser, tmp_path):
    open_page(browser, tmp_path, sigmoid_graph(), "sigmoid")
    box = browser.find_element("id", "input-0")
    box.clear()
    box.send_keys("-2")
    g = Graph()
    x = g.input(-2.0, "x")
    (1 / ((x * -1).exp() + 1)).named("y").backward()
    assert svg_value(browser, len(g.values) - 1) == "0.119203"
    assert svg_value(browser, 0, gradient=True) == f"{x.grad:.6g}"
    click(browser, "start")
    click(browser, "next")
    first = next(b for b in explain(g).split("\n\n") if b.startswith("[1]"))
    assert step_text(browser) == first  # the trace's first node, at x = -2


def test_an_array_page_shows_what_was_recorded(browser, tmp_path):
    graph = affine_graph()
    open_page(browser, tmp_path, graph, "affine")
    assert not browser.find_element("id", "input-0").is_enabled()
    click(browser, "start")
    click(browser, "next")
    assert "to b               dy (3) = dout (2×3) · 1 = [5, 7, 9]" in step_text(browser)
    assert browser.get_log("browser") == []


def test_the_korean_page_lines_up_its_hangul_as_the_trace_does(browser, tmp_path):
    graph = buy_apple_graph()
    path = write_page(graph, tmp_path / "apple-ko.html", lang="ko")
    browser.get(path.as_uri())
    assert "역전파, 노드 하나씩" in browser.find_element("tag name", "body").text
    click(browser, "back")  # the first node, written by the script
    first = next(b for b in explain(graph, lang="ko").split("\n\n") if b.startswith("[1]"))
    assert step_text(browser) == first
    assert browser.find_element("id", "step-count").text == "2단계 중 1단계"


def test_an_array_gradient_is_hidden_whole_until_it_arrives(browser, tmp_path):
    graph = affine_graph()
    open_page(browser, tmp_path, graph, "affine-steps")
    w = graph.values.index(graph["W"])
    script = (
        "const g = [...document.querySelectorAll('#picture g.node')]"
        f".find((n) => n.querySelector('title').textContent === 'v{w}');"
        "return [...g.querySelectorAll('text')].filter((e) => e.getAttribute('fill') === "
        "'#c00000').map((e) => getComputedStyle(e).visibility);"
    )
    assert browser.execute_script(script) == ["visible"] * 2  # its two rows
    click(browser, "back")  # only the add node has run: W's gradient has not arrived
    assert browser.execute_script(script) == ["hidden"] * 2
    assert browser.find_element("id", "input-0").get_attribute("value") == "(2×2) [[1, 2], [3, 4]]"


def test_the_title_follows_a_changed_input(browser, tmp_path):
    from chainrule.explain import example_title

    graph = build("apple-orange")
    path = write_page(graph, tmp_path / "shop.html", title=example_title("apple-orange"))
    browser.get(path.as_uri())
    title = "#picture svg g.graph > text"
    first = browser.find_elements("css selector", title)[0].get_attribute("textContent")
    assert first.endswith("(100 × 2 + 150 × 3) × 1.1 = 715")
    box = browser.find_element("id", "input-0")  # apple
    box.clear()
    box.send_keys("120")
    shown = browser.find_elements("css selector", title)[0].get_attribute("textContent")
    assert shown.endswith("(120 × 2 + 150 × 3) × 1.1 = 759")  # (240 + 450) × 1.1
    assert browser.title == shown
    browser.save_screenshot(str(tmp_path / "title.png"))


COLUMN = """
const pre = document.getElementById("step-text");
const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const i = node.data.indexOf(arguments[0]);
  if (i < 0) continue;
  const range = document.createRange();
  range.setStart(node, i); range.setEnd(node, i + 1);
  return range.getBoundingClientRect().left;
}
return null;
"""


def test_the_korean_rows_line_up_in_the_browser(browser, tmp_path):
    # The columns are measured in the drawn text, so Hangul must be drawn in a real font.
    needs_tool("fonts-nanum", korean_font(), "no font with Hangul (apt-get install fonts-nanum)")
    path = write_page(sigmoid_graph(), tmp_path / "sigmoid-ko.html", lang="ko")
    browser.get(path.as_uri())
    click(browser, "start")
    click(browser, "next", times=2)  # [2] v₃ = v₂ + 1: its last row is "→ v₂"
    assert "→ v₂" in step_text(browser)
    columns = [browser.execute_script(COLUMN, marker) for marker in ("dout =", "∂z/∂x′", "dx′ =")]
    assert None not in columns and max(columns) - min(columns) < 1, columns
    browser.save_screenshot(str(tmp_path / "korean.png"))


def test_a_page_of_non_finite_numbers_runs_and_recomputes(browser, tmp_path):
    g = Graph()
    x = g.input(float("nan"), "x")
    with np.errstate(all="ignore"):
        y = (x.exp() + g.input(1000.0, "big").exp()).named("y")
        y.backward()
    open_page(browser, tmp_path, g, "non-finite")
    assert browser.get_log("browser") == []  # JSON.parse read the page's data
    index = g.values.index(y)
    assert svg_value(browser, index) == "nan"
    box = browser.find_element("id", "input-0")
    box.clear()
    box.send_keys("0")
    assert svg_value(browser, index) == "inf"  # exp(0) + exp(1000), as NumPy gives it
    assert svg_value(browser, 0, gradient=True) == "1"  # dy/dx = exp(0)
