"""The documentation: the site builds strictly, the tutorials execute and show the numbers
stored in them, and every code block of the pages runs.

When a tutorial changes on purpose, store its new outputs with
``python tests/docs/test_docs.py --store`` (from the repository root), and read the diff.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((DOCS / "tutorials").glob("*.ipynb"))
PAGES = sorted(DOCS.glob("*.md"))
KERNEL = "chainrule-docs"


def require(name: str):
    """Import a documentation tool; skipped where it is absent, but CI installs the tools
    (the ``test`` extra), so there a missing one fails."""
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{name} is not installed (pip install -e '.[test]')")


def kernel_env(folder: Path) -> dict[str, str]:
    """An environment whose Jupyter finds a kernel running this very interpreter, so the
    notebooks execute in the environment under test (a fresh venv in CI) and import the
    chainrule it imports."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "chainrule (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    env = dict(os.environ, JUPYTER_PATH=str(folder))
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path)


def execute(path: Path, folder: Path):
    """The notebook at ``path``, executed from the top in a fresh kernel."""
    nbformat, nbclient = require("nbformat"), require("nbclient")
    require("ipykernel")
    notebook = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(kernel_env(folder))  # the kernel manager reads os.environ
    try:
        client = nbclient.NotebookClient(
            notebook, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(ROOT)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return notebook


# What may legitimately differ between two runs of the same notebook: where an object sits
# in memory, and the digits of a rounding error (a gradient check's 1e-10 differences
# depend on the BLAS kernel the CPU gets).
VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"\b\d(?:\.\d+)?e-(?:0[7-9]|[1-9]\d)\b"), "<rounding error>"),
]


def shown_text(cell) -> list[str]:
    """The text a code cell shows: what it printed, and the plain text of what it displayed."""
    texts, stream = [], None
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":  # a kernel may cut one print into several
            if output["name"] != stream:
                texts.append(f"[{output['name']}] ")
            texts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            texts.append(output["data"].get("text/plain", ""))
        elif output["output_type"] == "error":
            texts.append("\n".join(output["traceback"]))
        stream = output.get("name") if output["output_type"] == "stream" else None
    text = "".join(texts)
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tutorial_executes_and_shows_its_stored_numbers(path, tmp_path):
    nbformat = require("nbformat")
    stored = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    executed = [c for c in execute(path, tmp_path).cells if c.cell_type == "code"]
    assert any(c.get("outputs") for c in stored), "the notebook is stored unexecuted"
    for number, (old, new) in enumerate(zip(stored, executed), 1):
        assert shown_text(new) == shown_text(old), f"{path.name}, code cell {number}:\n{old.source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tutorial_shows_its_graphs_inline(path):
    nbformat = require("nbformat")
    cells = nbformat.read(path, as_version=4).cells
    shown = [o["data"] for c in cells if c.cell_type == "code" for o in c.outputs if "data" in o]
    pictures = [d for d in shown if "image/svg+xml" in d]
    traces = [d for d in shown if d.get("text/html", "").startswith("<pre")]
    assert len(pictures) >= 5 and len(traces) >= 4, (len(pictures), len(traces))


def test_korean_tutorial_is_in_the_korean_editions_terms():
    nbformat = require("nbformat")
    notebook = nbformat.read(DOCS / "tutorials" / "ch05-backprop.ko.ipynb", as_version=4)
    prose = "".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for term in ("순전파", "역전파", "연쇄법칙", "국소적 미분"):
        assert term in prose, term
    traces = [
        o["data"]["text/plain"]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "explain(" in c.source and "data" in o
    ]
    assert traces and all("상류의 미분" in t and "국소적 미분" in t for t in traces)


def test_the_two_editions_run_the_same_code():
    nbformat = require("nbformat")
    english, korean = (
        nbformat.read(DOCS / "tutorials" / f"ch05-backprop.{lang}.ipynb", as_version=4).cells
        for lang in ("en", "ko")
    )
    assert [c.cell_type for c in english] == [c.cell_type for c in korean]  # cell for cell
    for en, ko in zip(english, korean):
        if en.cell_type == "code":
            assert ko.source.replace(', lang="ko"', "") == en.source


def test_the_site_builds_strictly(tmp_path):
    require("mkdocs")
    site = tmp_path / "site"
    env = dict(kernel_env(tmp_path), NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ["index.html", "design/index.html", "api/layers/index.html",
                 "tutorials/ch05-backprop.ko/index.html"]:
        assert (site / page).is_file(), page
    api = (site / "api" / "networks" / "index.html").read_text(encoding="utf-8")
    assert ":class:`" not in api and ":meth:`" not in api  # the roles became references
    assert broken_links(site) == []


def broken_links(site: Path) -> list[str]:
    """Each relative link of the built site that leads to no file. MkDocs checks the
    pages' links; this also covers the notebooks' and the API pages' HTML."""
    broken = []
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for target in re.findall(r'(?:href|src)="([^"#?]+)[^"]*"', html):
            if re.match(r"[a-z]+:|//", target):
                continue
            path = (site / target.lstrip("/") if target.startswith("/") else page.parent / target)
            if not (path.is_file() or (path / "index.html").is_file()):
                broken.append(f"{page.relative_to(site)}: {target}")
    return broken


# The pages' code blocks. A comment just above a block says how it is checked:
#   <!-- not run: REASON -->      skipped, with the reason;
#   <!-- exits N -->              each line fails with status N and one line on stderr;
#   <!-- output of: COMMAND -->   a text block: each paragraph is in what COMMAND prints;
#   <!-- printed by: the Python block above -->   a text block: each paragraph is in what
#                                 the page's python block just before it prints.
# Every other python or sh block runs in a scratch folder: a python block on its own, an
# sh block line by line, each line a chainrule command that must succeed.
BLOCK = re.compile(
    r"(?:<!-- (?P<mark>not run|exits|output of|printed by):? (?P<note>.*?) -->\n)?"
    r"```(?P<lang>\w+)\n(?P<body>.*?)```",
    re.S,
)


def blocks(langs):
    for page in PAGES:
        python = None  # the page's last python block, for a text block it printed
        for number, m in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            note = python if m["mark"] == "printed by" else m["note"]
            if m["lang"] in langs:
                yield pytest.param(page, m["mark"], note, m["body"],
                                   id=f"{page.stem}-{number}-{m['lang']}")
            if m["lang"] == "python":
                python = m["body"]


def chainrule(command: str, folder: Path) -> subprocess.CompletedProcess:
    """Run one ``chainrule ...`` line of a page as ``python -m chainrule``, in ``folder``."""
    words = shlex.split(command)
    assert words[0] == "chainrule", f"not a chainrule command (mark the block not run): {command}"
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *words[1:]],
        cwd=folder, env=kernel_env(folder), capture_output=True, text=True, timeout=120,
    )


def test_every_page_block_is_a_known_language():
    for page in PAGES:
        for m in BLOCK.finditer(page.read_text(encoding="utf-8")):
            assert m["lang"] in ("python", "sh", "text"), (page.name, m["lang"])


@pytest.mark.parametrize(("page", "mark", "note", "body"), list(blocks({"python"})))
def test_page_python_block_runs(page, mark, note, body, tmp_path, monkeypatch):
    if mark == "not run":
        pytest.skip(note)
    monkeypatch.chdir(tmp_path)
    exec(compile(body, f"{page.name} block", "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(("page", "mark", "note", "body"), list(blocks({"sh"})))
def test_page_command_block_runs(page, mark, note, body, tmp_path):
    if mark == "not run":
        pytest.skip(note)
    status = int(note) if mark == "exits" else 0
    for line in body.replace("\\\n", " ").splitlines():
        command = line.split("#", 1)[0].strip()
        if command:
            result = chainrule(command, tmp_path)
            assert result.returncode == status, f"{line}\n{result.stderr}"
            if status:
                assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("page", "mark", "note", "body"), list(blocks({"text"})))
def test_page_output_block_is_what_its_command_prints(
    page, mark, note, body, tmp_path, monkeypatch
):
    if mark == "not run":  # an excerpt of a run too long for the tests, with the reason
        pytest.skip(note)
    assert mark in ("output of", "printed by"), f"{page.name}: say what prints this text block"
    if mark == "printed by":
        assert note, f"{page.name}: no python block above the text block it printed"
        monkeypatch.chdir(tmp_path)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(note, f"{page.name} block", "exec"), {"__name__": "__docs__"})
        stdout = printed.getvalue()
    else:
        result = chainrule(note, tmp_path)
        assert result.returncode == 0, result.stderr
        stdout = result.stdout
    for paragraph in body.split("\n\n"):
        assert paragraph.strip("\n") + "\n" in stdout, paragraph


def test_the_guides_korean_excerpt_is_in_the_korean_editions_terms():
    # test_page_output_block_is_what_its_command_prints checks it is what explain prints.
    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    korean = guide.split("<!-- output of: chainrule explain apple --lang ko -->", 1)[1]
    korean = korean.split("```text\n", 1)[1].split("```", 1)[0]
    assert "상류의 미분" in korean and "국소적 미분" in korean


def store(paths: list[Path]) -> None:
    """Execute each notebook and write it back with its new outputs."""
    import tempfile

    import nbformat

    for path in paths:
        with tempfile.TemporaryDirectory() as folder:
            notebook = execute(path, Path(folder))
        for cell in notebook.cells:
            cell.metadata.pop("execution", None)  # timestamps: noise in every diff
        nbformat.write(notebook, path)
        print("stored", path.relative_to(ROOT))


if __name__ == "__main__":
    if sys.argv[1:] != ["--store"]:
        sys.exit("usage: python tests/docs/test_docs.py --store")
    store(NOTEBOOKS)


def test_docstring_roles_become_links_and_one_naming_nothing_warns(tmp_path, caplog):
    griffe = require("griffe")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""See :class:`Thing`, :func:`~pkg.make` and :class:`Nothing`. Then::\n\n'
        '    code\n"""\n'
        "class Thing:\n    pass\n\n\ndef make():\n    pass\n",
        encoding="utf-8",
    )
    extension = griffe.load_extensions(f"{DOCS / '_ext' / 'sphinx_roles.py'}:SphinxRoles")
    with caplog.at_level("WARNING", logger="mkdocs.plugins.sphinx_roles"):
        module = griffe.load("pkg", search_paths=[str(tmp_path)], extensions=extension)
    text = module.docstring.value
    assert '<autoref identifier="pkg.Thing" optional><code>Thing</code></autoref>' in text
    assert '<autoref identifier="pkg.make" optional><code>make()</code></autoref>' in text
    assert "Then:\n\n" in text and "::" not in text  # reST's literal mark, as reST prints it
    assert [r.getMessage() for r in caplog.records] == [
        "pkg: :class:`Nothing` names nothing in the package"
    ]
