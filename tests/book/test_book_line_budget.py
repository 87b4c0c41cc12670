"""The book's six layers stay as short as the book's: a line budget, as tinygrad keeps one.

Code lines are counted as a reader meets them: no blank lines, comments or docstrings.
The book's own counts, the same way, from its repository (MIT): ``ch05/layer_naive.py``
(MulLayer 13, AddLayer 10) and ``common/layers.py`` (Relu 12, Sigmoid 10, Affine 20,
SoftmaxWithLoss 19): 84 lines in all.
"""

import ast
import inspect
import io
import textwrap
import tokenize

import pytest

from chainrule import layers, losses

BOOK_LINES = {
    "MulLayer": 13,
    "AddLayer": 10,
    "Relu": 12,
    "Sigmoid": 10,
    "Affine": 20,
    "SoftmaxWithLoss": 19,
}
MOST_PER_CLASS = 1.6  # times the book's lines
MOST_IN_ALL = 130


def code_lines(cls: type) -> int:
    """Lines of ``cls``'s source that hold code: not blank, not a comment, not a docstring."""
    source = textwrap.dedent(inspect.getsource(cls))
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def test_the_counter_counts_code_only():
    class Example:
        """A docstring,
        on two lines."""

        # a comment
        def method(self):
            return [
                1,
                2,  # a comment after code
            ]

    assert code_lines(Example) == 6  # class, def, and the four lines of the return


@pytest.mark.parametrize("name", BOOK_LINES)
def test_each_layer_is_at_most_sixty_percent_longer_than_the_books(name):
    cls = getattr(layers, name, None) or getattr(losses, name)
    assert code_lines(cls) <= MOST_PER_CLASS * BOOK_LINES[name]


def test_the_six_layers_together_fit_the_budget():
    total = sum(code_lines(getattr(layers, name)) for name in BOOK_LINES)
    assert total <= MOST_IN_ALL
