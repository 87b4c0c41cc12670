"""The README: short, its Quickstart the commands CI runs, its Python example runs with the
book's numbers, its trace excerpt is what explain prints, its links lead somewhere, and its
table names every command. The pages it links to are checked by tests/docs/test_docs.py."""

import re
from pathlib import Path

import pytest

from chainrule.cli import build_parser
from chainrule.examples import build
from chainrule.explain import explain

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def text() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    return text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def python_blocks():
    return re.findall(r"```python\n(.*?)```", text(), re.S)


def test_readme_is_short():
    assert len(text().splitlines()) <= 150


def test_readme_has_a_quickstart_with_two_commands():
    commands = re.findall(r"```sh\n(.*?)```", section("Quickstart"), re.S)
    assert len(commands) == 2
    assert "chainrule train" in commands[0] and "pytest" in commands[1]


def test_the_quickstarts_test_command_is_the_one_ci_runs():
    test_command = re.findall(r"```sh\n(.*?)```", section("Quickstart"), re.S)[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci  # byte for byte, a whole line of .ci/run


def test_one_python_example_is_the_books_apple():
    # test_python_example_runs checks the book's numbers in the block that defines apple.
    assert any("apple" in block for block in python_blocks())


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_example_runs(index):
    namespace = {}
    exec(compile(python_blocks()[index], f"README block {index}", "exec"), namespace)
    if "apple" in namespace:  # the book's numbers, as the comments in the example say
        assert namespace["price"] == pytest.approx(220)
        assert (namespace["dapple"], namespace["dapple_num"], namespace["dtax"]) == (
            pytest.approx((2.2, 110, 200))
        )
        assert (
            namespace["apple"].grad,
            namespace["count"].grad,
            namespace["tax"].grad,
        ) == pytest.approx((2.2, 110, 200))


def test_the_trace_excerpt_is_what_explain_prints():
    (excerpt,) = re.findall(r"```text\n(.*?)```", section("The book's apple, node by node"), re.S)
    trace = explain(build("apple"))  # as chainrule explain apple prints it
    blocks = excerpt.split("\n\n")
    assert len(blocks) == 2  # the forward pass, then one node of the backward
    for block in blocks:
        assert block.strip("\n") + "\n" in trace, block


def test_the_command_table_names_every_command():
    table = section("The commands")
    listed = re.findall(r"^\| `chainrule ([a-z-]+)", table, re.M)
    assert sorted(listed) == sorted(build_parser().commands)


def test_every_relative_link_leads_to_a_file():
    targets = re.findall(r"\]\(([^)#\s]+)", text())
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/book.md" in relative and "docs/apple-orange.png" in relative
    assert [t for t in relative if not (ROOT / t).is_file()] == []


def test_the_readme_says_how_to_build_the_site():
    assert 'pip install -e ".[docs]"' in text() and "mkdocs serve" in text()
