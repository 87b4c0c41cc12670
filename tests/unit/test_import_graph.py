"""No import circles: chainrule's modules import each other in one direction only.

Every ``import`` and ``from … import`` of a chainrule module counts, at module level and
inside functions alike (a lazy import still ties the two modules together).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import chainrule

PACKAGE_DIR = Path(chainrule.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The chainrule modules that the file at ``path`` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from chainrule.viz import diagram` imports the submodule chainrule.viz.diagram
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE_DIR.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, …, a]``, or None (depth-first search, three colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_import_graph_is_read_from_the_sources():
    graph = import_graph()
    assert "chainrule.graph" in graph["chainrule.viz.diagram"]
    assert "chainrule.validation" in graph["chainrule.layers"]
    assert "chainrule.cli.gradchecking" in graph["chainrule.cli"]


def test_find_cycle_reports_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_chainrule_imports_itself_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_a_graph_shows_as_a_picture_without_importing_viz_by_hand():
    # graph.py no longer imports viz; `import chainrule` must still hand the view in.
    pytest.importorskip("IPython.core.formatters")
    code = (
        "from IPython.core.formatters import DisplayFormatter\n"
        "from chainrule.examples import buy_apple_graph\n"
        "data, _ = DisplayFormatter().format(buy_apple_graph())\n"
        "print(sorted(set(data) & {'image/svg+xml', 'text/html'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from chainrule.viz.diagram import find_renderer

    expected = ["text/html"] if find_renderer() is None else ["image/svg+xml"]
    assert out.stdout.split("\n")[0] == str(expected)
