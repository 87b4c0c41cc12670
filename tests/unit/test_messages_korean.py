"""The trace, the pictures and the page in Korean (--lang ko), in the terms of the book's
Korean edition, aligned where Hangul takes two columns; English stays the default."""

import pytest

from chainrule.cli import main
from chainrule.examples import buy_apple_graph
from chainrule.explain import explain, explain_example
from chainrule.graph import Graph
from chainrule.messages import display_width, korean_font, message
from chainrule.viz import diagram as viz
from chainrule.viz.diagram import find_renderer, hangul_problem, render, to_dot


def test_the_trace_speaks_the_books_korean():
    text = explain_example("apple-orange", lang="ko")
    for term in ("순전파", "역전파", "연쇄법칙", "국소적 미분", "상류"):
        assert term in text, term
    assert "Forward pass" not in text and "gradient arriving" not in text
    # The values are named as the Korean edition names them (5.1-5.4).
    assert "    → 사과 개수        dy = dout · x = 1.1 · 100 = 110\n" in text
    assert "    지불 금액 = 세전 금액 × 소비세 = 650 × 1.1 = 715\n" in text
    assert "    → 귤               dx = dout · y = 1.1 · 3 = 3.3\n" in text
    assert "apple" not in text and "tax" not in text
    assert explain_example("apple-orange").startswith("Forward pass through 4 nodes")


def test_hangul_rows_line_up_as_the_english_ones_do():
    markers = ("dout = ", "dx = ", "dy = ", "∂z/∂x = ")

    def rows(text):  # the backward pass's rows, in order
        indented = (line for line in text.splitlines() if line.startswith("    "))
        return [line for line in indented if any(m in line for m in markers)]

    english = rows(explain_example("apple"))
    korean = rows(explain_example("apple", lang="ko"))
    assert len(english) == len(korean) == 8  # two nodes: dout, ∂z/∂x, dx and dy rows each
    for line_en, line_ko in zip(english, korean, strict=True):
        for marker in (m for m in markers if m in line_en):
            assert marker in line_ko, (marker, line_ko)  # the same row, in Korean
            column_en = display_width(line_en[: line_en.index(marker)])
            assert display_width(line_ko[: line_ko.index(marker)]) == column_en, line_ko


def test_a_learners_korean_names_are_aligned_by_their_width():
    g = Graph()
    apple, n = g.input(100.0, "사과"), g.input(2.0, "개수")
    (apple * n * g.input(1.1, "tax")).named("가격").backward()
    text = explain(g, lang="ko")
    rows = [line for line in text.splitlines() if line.startswith("    ∂가격/∂")]
    assert len(rows) == 3
    # Each gradient starts in the same column, the Hangul names counted two columns a letter.
    assert len({display_width(row[: row.rindex(" ") + 1]) for row in rows}) == 1
    assert (
        display_width("가격") == 4 and max(display_width(line) for line in text.splitlines()) <= 100
    )


def test_an_unknown_language_is_refused(usage_error):
    with pytest.raises(ValueError, match="unknown language"):
        explain(buy_apple_graph(), lang="fr")
    assert "invalid choice" in usage_error(["explain", "apple", "--lang", "fr"])


def test_the_command_line_explains_in_korean(capsys):
    assert main(["explain", "sigmoid", "--lang", "ko"]) == 0
    out = capsys.readouterr().out
    assert "한 노드로 같은 계산: 책의 Sigmoid 계층" in out
    assert out.rstrip().endswith(
        "→ x                dx = dout · y(1 − y) = 1 · 0.196612 = 0.196612"
    )


def test_the_picture_has_a_korean_legend_set_in_a_korean_font(monkeypatch):
    monkeypatch.setattr(viz, "korean_font", lambda: "NanumGothic")
    dot = to_dot(buy_apple_graph(), title=message("title_apple", "ko"), lang="ko")
    assert message("legend", "ko") in dot and "사과 쇼핑" in dot
    assert dot.count('fontname="NanumGothic"') == 2 and "Helvetica" not in dot
    assert 'fontname="Helvetica"' in to_dot(buy_apple_graph())


def test_what_a_korean_picture_lacks_is_said(monkeypatch):
    monkeypatch.setattr(viz, "korean_font", lambda: None)
    assert "fonts-nanum" in hangul_problem()
    monkeypatch.setattr(viz, "korean_font", lambda: "NanumGothic")
    monkeypatch.setattr(viz, "find_renderer", lambda: "/venv/bin/graphviz-pure")
    assert "apt-get install graphviz" in hangul_problem()
    monkeypatch.setattr(viz, "find_renderer", lambda: "/usr/bin/dot")
    assert hangul_problem() is None


def test_the_command_line_notes_a_missing_font(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(viz, "korean_font", lambda: None)
    assert main(["graph", "apple", "--lang", "ko", "-o", str(tmp_path / "g.dot")]) == 0
    assert "note: no font with Hangul is installed" in capsys.readouterr().err


@pytest.mark.skipif(
    find_renderer() is None or not find_renderer().endswith("dot") or korean_font() is None,
    reason="needs Graphviz's dot and a Korean font (apt-get install graphviz fonts-nanum)",
)
def test_graphviz_sets_the_hangul_in_the_korean_font():
    svg = render(to_dot(buy_apple_graph(), lang="ko"), format="svg").data.decode("utf-8")
    assert message("legend", "ko") in svg
    assert f'font-family="{korean_font()}' in svg
