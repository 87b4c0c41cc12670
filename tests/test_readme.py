"""The README's Python examples run, and its numbers are what they say."""

import re
from pathlib import Path

import pytest

from chainrule.examples import build
from chainrule.explain import explain

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_a_quickstart_with_two_commands():
    text = README.read_text(encoding="utf-8")
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", quickstart, re.S)
    assert len(commands) == 2
    assert "chainrule train" in commands[0] and "pytest" in commands[1]


def test_one_python_example_is_the_books_apple():
    # test_python_example_runs checks the book's numbers in the block that defines apple.
    assert any("apple" in block for block in python_blocks())


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_example_runs(index):
    namespace = {}
    exec(compile(python_blocks()[index], f"README block {index}", "exec"), namespace)
    if "apple" in namespace:  # the book's numbers, as the comments in the example say
        assert namespace["price"] == pytest.approx(220)
        assert (
            namespace["apple"].grad,
            namespace["count"].grad,
            namespace["tax"].grad,
        ) == pytest.approx((2.2, 110, 200))


def test_the_trace_excerpts_are_what_explain_prints():
    text = README.read_text(encoding="utf-8")
    section = text.split("## See the chain rule", 1)[1].split("\n## ", 1)[0]
    english, korean = re.findall(r"```text\n(.*?)```", section, re.S)
    for excerpt, lang in ((english, "en"), (korean, "ko")):
        trace = explain(build("apple", lang=lang), lang=lang)  # as chainrule explain apple
        for block in excerpt.split("\n\n"):  # the forward pass, then one node of the backward
            assert block.strip("\n") + "\n" in trace, block
    assert "상류의 미분" in korean
