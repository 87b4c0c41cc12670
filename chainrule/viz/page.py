"""One self-contained HTML page of a recorded graph, to explore in a browser offline.

:func:`page_html` (and :func:`write_page`) put the graph's picture (the SVG that
:mod:`chainrule.viz.diagram` draws), its numbers and a small script into one file, with no
link to anything outside it. The learner can:

- change an input of a graph of numbers (the apple's price) and see the values flow
  forward and the gradients flow back through the picture;
- step through the backward pass node by node: the node is highlighted and its block of
  the chain-rule trace shown, the gradient arriving, the local derivatives and what it
  passes to each input, with the numbers.

The script recomputes a node from :data:`SCALAR_RULES`: for each kind of node, its forward
rule and local derivatives, written in the common part of Python's and JavaScript's
syntax, so the one table is the script's formulas and what the tests evaluate against the
nodes themselves. A graph of arrays, or one with a node the table lacks, shows what was
recorded, and its steps are the trace's own text.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.explain import (
    LABEL_WIDTH,
    _assignment,
    _expression,
    _factor,
    _Letters,
    _Style,
    _Trace,
    partial,
)
from chainrule.fileio import atomic_write
from chainrule.formatting import describe, printable
from chainrule.graph import Graph, Value, as_graph
from chainrule.messages import message
from chainrule.viz.diagram import GRAD_COLOR, fill_title, render, to_dot

__all__ = ["SCALAR_RULES", "page_html", "write_page"]

# Class name -> (forward, local derivative of each input), in variables x and y (the
# inputs), out (the output) and k (Pow's exponent), with exp, log and max.
SCALAR_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "MulLayer": ("x * y", ("y", "x")),
    "AddLayer": ("x + y", ("1", "1")),
    "Sub": ("x - y", ("1", "-1")),
    "Neg": ("-x", ("-1",)),
    "Div": ("x / y", ("1 / y", "-x / y ** 2")),
    "Reciprocal": ("1 / x", ("-(out ** 2)",)),
    "Pow": ("x ** k", ("k * x ** (k - 1)",)),
    "Exp": ("exp(x)", ("out",)),
    "Log": ("log(x)", ("1 / x",)),
    "Relu": ("max(x, 0)", ("(x > 0) * 1",)),
    "Sigmoid": ("1 / (1 + exp(-x))", ("out * (1 - out)",)),
}


def _is_live(graph: Graph) -> bool:
    """True where the page can recompute the graph: numbers only, every node in the table."""
    return all(np.ndim(v.data) == 0 for v in graph.values) and all(
        node.op in SCALAR_RULES for node in graph.nodes
    )


def _number(x: Any) -> float | str | None:
    """A number for the page's JSON, which has no NaN or infinity: those are the strings
    ``"nan"``, ``"inf"`` and ``"-inf"``, as the trace writes them (the script reads them
    back)."""
    if x is None:
        return None
    number = float(np.asarray(x, dtype=np.float64))
    if np.isfinite(number):
        return number
    return "nan" if np.isnan(number) else ("inf" if number > 0 else "-inf")


def _page_data(graph: Graph, labels: dict[str, str], lang: str, who: str) -> dict[str, Any]:
    """Everything the script needs, as JSON: values, nodes, the steps' text."""
    trace = _Trace(graph, _Style(False, lang), who)
    live = _is_live(graph)
    index = {v: i for i, v in enumerate(graph.values)}
    values = [
        {
            "name": v.name,
            "d": partial(trace.name(v)),
            "input": v.node is None and not v.constant,
            "data": _number(v.data) if live else None,
            "text": describe(v.data),
        }
        for v in graph.values
    ]
    order = {node: k for k, node in enumerate(trace.ran)}
    nodes = []
    for k, node in enumerate(graph.nodes):
        letters = _Letters(node, trace.names)
        forward, local_rules = SCALAR_RULES.get(node.op, ("", ()))
        inputs = [index[v] for v in node.inputs]
        nodes.append(
            {
                "id": k,
                "out": index[node.output],
                "inputs": inputs,
                "forward": forward,
                "local": list(local_rules),
                "k": _number(getattr(node.layer, "k", None)) if live else None,
                "step": order.get(node),
                "heading": trace._heading(order.get(node, 0) + 1, node, letters),
                "expression": _assignment(
                    trace.name(node.output), _expression(node, [trace.name(v) for v in node.inputs])
                ),
                "where": letters.where(trace.name, lang),
                "letters": list(letters.input_letters),
                "outLetter": letters.output_letter,
                "formulas": [letters(f) for f in node.local],
                "factors": [_factor(letters(f)) for f in node.local],
                "constant": [v.constant for v in node.inputs],
            }
        )
    steps = [[f"{labels['start_line']}: {trace.start()}"]]
    steps += [trace.step(k, node) for k, node in enumerate(trace.ran, start=1)]
    return {
        "live": live,
        "values": values,
        "nodes": nodes,
        "ran": [graph.nodes.index(node) for node in trace.ran],
        "seed": index[trace.top],
        "dout": _number(trace.top.grad) if live else None,
        "out": partial(trace.out),
        "topName": trace.name(trace.top),
        "steps": steps,
        "labels": labels,
        "labelWidth": LABEL_WIDTH,
    }


def _labels(lang: str) -> dict[str, str]:
    """The page's words in ``lang``; ``{name}``, ``{n}`` and ``{k}`` the script fills in."""
    keys = {
        "inputs": "inputs",
        "inputs_note": "inputs_note",
        "recorded_note": "recorded_note",
        "steps": "steps",
        "start": "step_start",
        "back": "step_back",
        "next": "step_next",
        "all": "step_all",
        "start_line": "start",
        "arriving": "arriving",
        "local": "local",
        "locals": "locals",
        "passes": "passes",
        "where": "where",
    }
    labels = {name: message(key, lang) for name, key in keys.items()}
    labels["to"] = message("to", lang, name="{name}")
    labels["sum"] = message("used", lang, n="{n}")
    labels["step_of"] = message("step_of", lang, k="{k}", n="{n}")
    return labels


# Characters that must not reach the script element as they are: "<" could open
# "<!--" or close it with "</script>", ">" and "&" are escaped alike for any HTML parser,
# and U+2028/U+2029 end a line in older JavaScript. JSON strings may hold each as \uXXXX.
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def embedded_json(data: Any) -> str:
    """``data`` as JSON safe to put inside a ``<script>`` element: no bare NaN or
    Infinity (:func:`json.dumps` with ``allow_nan=False``), and no ``<``, ``>``, ``&``,
    U+2028 or U+2029 as they are (see :data:`_JSON_ESCAPES`)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return "".join(_JSON_ESCAPES.get(c, c) for c in text)


def page_html(
    graph: Graph | Value | tuple[Graph, Value],
    *,
    title: str | None = None,
    lang: str = "en",
    who: str = "page_html",
) -> str:
    """The page of ``graph`` (after backward) as one HTML document; see the module.

    ``graph`` may also be a value, or ``(graph, loss)`` as ``net.record(x, t)`` returns
    it: the page shows the graph after a backward from that value. ``title`` goes above
    the picture; each ``{name}`` of a value in it shows the value, and follows it when an
    input changes (``{apple} × {apple count} = {price}``). ``lang="ko"`` writes its
    words, the trace's lines and the picture's legend in Korean. ``who`` is the function
    its errors name.

    Raises:
        StateError: ``graph.backward`` has not run.
        RendererNotFound: no Graphviz program to draw the picture.
    """
    graph = as_graph(graph, who)
    labels = _labels(lang)
    data = _page_data(graph, labels, lang, who)
    shown = fill_title(title, graph) if title else "chainrule"
    data["title"] = {"template": title or "", "shown": shown}
    svg = render(to_dot(graph, title=title, lang=lang), format="svg").data.decode("utf-8")
    svg = svg[svg.index("<svg") :]  # the XML prolog and doctype cannot stand inside HTML
    return _TEMPLATE.format(
        title=html.escape(printable(shown)),
        svg=svg,
        data=embedded_json(data),
        script=_SCRIPT,
        grad=GRAD_COLOR,
        inputs=html.escape(labels["inputs"]),
        steps=html.escape(labels["steps"]),
        lang=lang,
    )


def write_page(
    graph: Graph | Value | tuple[Graph, Value],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    **options: Any,
) -> Path:
    """Write :func:`page_html` of ``graph`` (or of what ``net.record(x, t)`` returns) to
    ``path`` atomically; return the path."""
    path = Path(path)
    text = page_html(graph, title=title, who="write_page", **options)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


_TEMPLATE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; color: #222; }}
#picture svg {{ max-width: 100%; height: auto; }}
.panel {{ display: inline-block; vertical-align: top; margin: 0.5em 2em 0.5em 0; }}
label {{ display: block; margin: 0.2em 0; }}
input {{ margin-left: 0.5em; }}
input[type=number] {{ width: 8em; }}
button {{ margin-right: 0.3em; }}
pre {{ background: #f6f6f6; padding: 0.6em; min-height: 7em; }}
.hl ellipse, .hl polygon {{ fill: #ffe08a; stroke: #c07000; stroke-width: 2; }}
.pending {{ visibility: hidden; }}
/* A wide character (Hangul) takes two columns, as in a terminal, whatever the font. */
.wide {{ display: inline-block; width: 2ch; text-align: center; }}
</style></head>
<body>
<div id="picture">{svg}</div>
<div class="panel"><h3>{inputs}</h3><div id="inputs"></div><p id="note"></p></div>
<div class="panel"><h3>{steps}</h3>
<div><button id="start"></button><button id="back"></button><button id="next"></button>
<button id="all"></button> <span id="step-count"></span></div>
<pre id="step-text"></pre></div>
<script id="graph-data" type="application/json">{data}</script>
<script>
{script}
</script>
</body></html>
"""

_SCRIPT = r"""
"use strict";
const G = JSON.parse(document.getElementById("graph-data").textContent);
const L = G.labels;
const exp = Math.exp, log = Math.log, max = Math.max;
// JSON has no NaN or infinity: the page writes them as the trace does.
const num = (x) => (typeof x === "string" ? { nan: NaN, inf: Infinity, "-inf": -Infinity }[x] : x);
const nodeRules = G.nodes.map((n) => ({
  forward: n.forward && new Function("x", "y", "k", "exp", "log", "max", "return " + n.forward),
  local: n.local.map((r) => new Function("x", "y", "out", "k", "return " + r)),
}));

// Python's format(x, ".6g"), as chainrule.formatting writes every number.
function fmt(x) {
  if (!isFinite(x)) return isNaN(x) ? "nan" : (x > 0 ? "inf" : "-inf");
  if (x === 0) return "0";
  const [mantissa, e] = x.toExponential(5).split("e");
  const power = parseInt(e, 10);
  let s;
  if (power < -4 || power >= 6) {
    s = mantissa.replace(/\.?0+$/, "") + "e" + (power < 0 ? "-" : "+") +
      String(Math.abs(power)).padStart(2, "0");
  } else {
    s = x.toFixed(Math.max(0, 5 - power));
    if (s.includes(".")) s = s.replace(/\.?0+$/, "");
  }
  return s === "-0" ? "0" : s;
}
const signed = (x) => (fmt(x).startsWith("-") ? "(" + fmt(x) + ")" : fmt(x));
// Columns as a terminal counts them: Hangul and other wide characters take two.
const WIDE_CHARS = "\\u1100-\\u115f\\u2e80-\\ua4cf\\uac00-\\ud7a3\\uf900-\\ufaff\\uff00-\\uff60";
const WIDE = new RegExp("[" + WIDE_CHARS + "]");
const width = (s) => [...s].reduce((w, c) => w + (WIDE.test(c) ? 2 : 1), 0);
// Text in the pre, each wide character in a box exactly two columns wide, since a
// font's Hangul is rarely twice its Latin letters' width.
function setColumns(element, text) {
  element.textContent = "";
  for (const part of text.split(new RegExp("([" + WIDE_CHARS + "]+)"))) {
    if (!part) continue;
    if (!WIDE.test(part)) { element.appendChild(document.createTextNode(part)); continue; }
    for (const char of part) {
      const box = document.createElement("span");
      box.className = "wide";
      box.textContent = char;
      element.appendChild(box);
    }
  }
}
const row = (label, text) =>
  "    " + label + " ".repeat(Math.max(0, G.labelWidth - width(label))) + " " + text;

// SVG groups by their Graphviz title: v3 (a value on its arrow), n2 (a node).
const groups = {};
document.querySelectorAll("#picture g.node").forEach((g) => {
  groups[g.querySelector("title").textContent] = g;
});
const valueText = {}, gradTexts = {};
G.values.forEach((v, i) => {
  const g = groups["v" + i];
  if (!g) return;
  for (const t of g.querySelectorAll("text")) {
    // Centre each number on its arrow, so a longer one stays in place.
    const box = t.getBBox();
    t.setAttribute("text-anchor", "middle");
    t.setAttribute("x", box.x + box.width / 2);
    if ((t.getAttribute("fill") || "").toLowerCase() === "GRAD_COLOR") {
      (gradTexts[i] = gradTexts[i] || []).push(t);
    }
    else if (!(i in valueText)) valueText[i] = t;
  }
});

let data = G.values.map((v) => num(v.data)), grad = [], parts = [], nodeGrads = [], locals = [];
const dout = num(G.dout);

// The title's {name} fields follow the values; the picture draws it as one text line.
const byName = {};
G.values.forEach((v, i) => { if (!(v.name in byName)) byName[v.name] = i; });
const titleText = [...document.querySelectorAll("#picture svg g.graph > text")]
  .find((t) => t.textContent === G.title.shown);
function showTitle() {
  if (!G.title.template) return;
  const text = G.title.template.replace(/\{([^{}]+)\}/g,
    (field, name) => (name in byName ? fmt(data[byName[name]]) : field));
  if (titleText) titleText.textContent = text;
  document.title = text;
}

function forward() {
  G.nodes.forEach((n, k) => {
    const [x, y] = n.inputs.map((i) => data[i]);
    data[n.out] = nodeRules[k].forward(x, y, num(n.k), exp, log, max);
  });
}

function backward() {
  grad = G.values.map(() => null);
  parts = G.values.map(() => []);
  grad[G.seed] = dout;
  for (const k of G.ran) {
    const n = G.nodes[k];
    const [x, y] = n.inputs.map((i) => data[i]);
    locals[k] = nodeRules[k].local.map((f) => f(x, y, data[n.out], num(n.k)));
    nodeGrads[k] = locals[k].map((l) => grad[n.out] * l);
    n.inputs.forEach((i, j) => {
      if (n.constant[j]) return;
      parts[i].push(nodeGrads[k][j]);
      grad[i] = grad[i] === null ? nodeGrads[k][j] : grad[i] + nodeGrads[k][j];
    });
  }
}

function stepLines(s) {
  if (s === 0) return [L.start_line + ": " + G.out + "/" + G.values[G.seed].d + " = " + fmt(dout)];
  const k = G.ran[s - 1], n = G.nodes[k];
  const name = (i) => (i === G.seed ? G.topName : G.values[i].name);
  const lines = [n.heading];
  if (n.where) lines.push(row(L.where, n.where));
  let arriving = "dout = " + G.out + "/" + G.values[n.out].d + " = ";
  const p = parts[n.out];
  if (p.length > 1) {
    arriving += p.map(fmt).join(" + ") + " = " + fmt(grad[n.out]);
    arriving += "   " + L.sum.replace("{n}", p.length);
  } else arriving += fmt(grad[n.out]);
  lines.push(row(L.arriving, arriving));
  const terms = [], used = n.inputs.map((i, j) => j).filter((j) => !n.constant[j]);
  for (const j of used) {
    let term = "∂" + n.outLetter + "/∂" + n.letters[j] + " = " + n.formulas[j];
    const value = fmt(locals[k][j]);
    if (value !== n.formulas[j].replace("−", "-")) term += " = " + value;
    terms.push(term);
  }
  if (used.every((j) => n.formulas[j] === "1")) terms[terms.length - 1] += "   " + L.passes;
  const label = terms.length === 1 ? L.local : L.locals;
  lines.push(row(label, terms.join("    ")));
  for (const j of used) {
    const product = signed(grad[n.out]) + " · " + signed(locals[k][j]);
    const text = "d" + n.letters[j] + " = dout · " + n.factors[j] + " = " + product;
    lines.push(row(L.to.replace("{name}", name(n.inputs[j])), text + " = " + fmt(nodeGrads[k][j])));
  }
  return lines;
}

let step = G.ran.length;
function show() {
  if (G.live) {
    G.values.forEach((v, i) => {
      if (valueText[i]) valueText[i].textContent = fmt(data[i]);
      if (gradTexts[i] && grad[i] !== null) gradTexts[i][0].textContent = fmt(grad[i]);
    });
  }
  // A gradient shows once every node that passes a part of it has run.
  const last = {};
  G.ran.forEach((k, s) => G.nodes[k].inputs.forEach((i) => { last[i] = s + 1; }));
  G.values.forEach((v, i) => {
    const ready = i === G.seed || (last[i] !== undefined && last[i] <= step);
    (gradTexts[i] || []).forEach((t) => t.classList.toggle("pending", !ready));
  });
  Object.values(groups).forEach((g) => g.classList.remove("hl"));
  if (step > 0) groups["n" + G.ran[step - 1]].classList.add("hl");
  const lines = G.live ? stepLines(step) : G.steps[step];
  setColumns(document.getElementById("step-text"), lines.join("\n"));
  document.getElementById("step-count").textContent =
    L.step_of.replace("{k}", step).replace("{n}", G.ran.length);
}

function recompute() {
  if (G.live) { forward(); backward(); showTitle(); }
  show();
}

const inputs = document.getElementById("inputs");
G.values.forEach((v, i) => {
  if (!v.input) return;
  const label = document.createElement("label");
  label.textContent = v.name;
  const box = document.createElement("input");
  box.type = G.live ? "number" : "text"; box.step = "any"; box.id = "input-" + i;
  box.value = G.live ? fmt(num(v.data)) : v.text;
  if (!G.live) box.size = Math.min(60, v.text.length);
  box.disabled = !G.live;
  box.addEventListener("input", () => {
    const x = parseFloat(box.value);
    if (!isNaN(x)) { data[i] = x; recompute(); }
  });
  label.appendChild(box);
  inputs.appendChild(label);
});
document.getElementById("note").textContent = G.live ? L.inputs_note : L.recorded_note;
const moves = { start: () => 0, back: () => Math.max(0, step - 1),
  next: () => Math.min(G.ran.length, step + 1), all: () => G.ran.length };
for (const [id, move] of Object.entries(moves)) {
  const button = document.getElementById(id);
  button.textContent = L[id];
  button.addEventListener("click", () => { step = move(); show(); });
}
recompute();
""".replace("GRAD_COLOR", GRAD_COLOR.lower())
