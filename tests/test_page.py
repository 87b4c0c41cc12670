"""The interactive page: one self-contained HTML file, its formulas the same table the
tests hold against the nodes, and in a real browser (Debian's chromium, driven by
selenium) an input changed, the values and gradients recomputed, the backward stepped."""

import math
import re
import shutil

import pytest

from chainrule.cli import main
from chainrule.examples import affine_graph, buy_apple_graph, sigmoid_graph
from chainrule.explain import explain
from chainrule.graph import Graph
from chainrule.layers import AddLayer, MulLayer, Relu, Sigmoid
from chainrule.primitives import Div, Exp, Log, Neg, Pow, Reciprocal, Sub
from chainrule.viz.graph import find_renderer
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


# ---------------------------------------------------------------------------------------
# In a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
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
