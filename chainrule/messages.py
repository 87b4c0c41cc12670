"""The words of the trace, the pictures and the page, in English and in Korean.

Korean follows the terms of the book's Korean edition (밑바닥부터 시작하는 딥러닝):
순전파 (forward propagation), 역전파 (backpropagation), 연쇄법칙 (the chain rule),
국소적 미분 (local derivative), 상류 (upstream). English is the default.

Hangul takes two columns of a terminal, so text is aligned by :func:`display_width`
(``unicodedata.east_asian_width``), not by ``len``.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata

from chainrule.errors import ArgumentError

__all__ = [
    "LANGUAGES",
    "display_width",
    "korean_font",
    "message",
    "pad",
]

LANGUAGES = ("en", "ko")

_MESSAGES: dict[str, dict[str, str]] = {
    "forward": {
        "en": "Forward pass through {n} node{s}, in recording order",
        "ko": "순전파: 노드 {n}개, 기록된 순서대로",
    },
    "forward_note": {
        "en": "Each node computes its value from its inputs.",
        "ko": "각 노드는 입력으로부터 자신의 값을 계산합니다.",
    },
    "backward": {
        "en": "Backward pass through {n} node{s}, from {top} back to the inputs",
        "ko": "역전파: 노드 {n}개, {top}에서 입력 쪽으로",
    },
    "backward_note": {
        "en": "Each node multiplies the gradient arriving at its output (dout) by its local\n"
        "derivative and passes the product to each input; a value used by several nodes\n"
        "gets the sum of their gradients.",
        "ko": "연쇄법칙: 각 노드는 상류에서 흘러온 미분(dout)에 국소적 미분을 곱해\n"
        "각 입력으로 흘려보냅니다. 여러 노드가 쓰는 값은 그 미분들의 합을 받습니다.",
    },
    "primes_note": {
        "en": "A letter with a prime (x′) is a node's own letter where the graph already has\n"
        "a value of that name; the node's 'where' row says which value it stands for.",
        "ko": "프라임(x′)이 붙은 문자는 그래프에 같은 이름의 다른 값이 있어 구별한 노드 자신의\n"
        "문자입니다. 그 노드의 '여기서' 행이 어느 값을 가리키는지 알려 줍니다.",
    },
    "start": {"en": "Start", "ko": "시작"},
    "where": {"en": "where", "ko": "여기서"},
    "stands_for": {"en": "{letter} is {name}", "ko": "{letter}: {name}"},
    "arriving": {"en": "gradient arriving", "ko": "상류의 미분"},
    "local": {"en": "local derivative", "ko": "국소적 미분"},
    "locals": {"en": "local derivatives", "ko": "국소적 미분"},
    "to": {"en": "to {name}", "ko": "→ {name}"},
    "passes": {"en": "(the gradient passes through)", "ko": "(미분이 그대로 흐릅니다)"},
    "broadcast": {
        "en": "(summed back over broadcast axes)",
        "ko": "(브로드캐스트된 축을 따라 합산)",
    },
    "no_gradient": {
        "en": "no gradient: backward passes none to this input",
        "ko": "미분 없음: 역전파가 이 입력으로는 흘려보내지 않습니다",
    },
    "row0": {"en": "row 0 of {lhs}", "ko": "{lhs}의 0행"},
    "used": {"en": "(the sum: used {n} times)", "ko": "(합: {n}번 쓰임)"},
    "sum_of": {"en": "sum of {n} gradients", "ko": "미분 {n}개의 합"},
    "fan_out": {
        "en": "({name} is used {n} times: {parts} of its gradient, which is their sum)",
        "ko": "({name}은(는) {n}번 쓰입니다: 그 미분의 {parts}, 전체는 그 합)",
    },
    "part": {"en": "part {k}", "ko": "{k}번째 부분"},
    "parts": {"en": "parts {k}", "ko": "{k}번째 부분"},
    "and": {"en": " and ", "ko": "·"},
    "skipped": {
        "en": "({n} node{s} {verb} not lead to {top} and got no gradient)",
        "ko": "(노드 {n}개는 {top}에 이르지 않아 미분을 받지 않았습니다)",
    },
    "input_grads": {
        "en": "Gradients of {out} with respect to the inputs",
        "ko": "입력에 대한 {out}의 미분",
    },
    "param_grads": {
        "en": "Gradients of the parameters (what an optimiser uses)",
        "ko": "매개변수의 미분 (최적화가 쓰는 값)",
    },
    "same_heading": {
        "en": "The same in one node: the book's {layers}",
        "ko": "한 노드로 같은 계산: 책의 {layers} 계층",
    },
    "same_equal": {
        "en": "Its gradients equal those of the nodes above (largest difference: {listed})",
        "ko": "그 미분은 위 노드들의 미분과 같습니다 (가장 큰 차이: {listed})",
    },
    "same_differ": {
        "en": "Its gradients DIFFER from those of the nodes above (largest difference: {listed})",
        "ko": "그 미분이 위 노드들의 미분과 다릅니다 (가장 큰 차이: {listed})",
    },
    "legend": {
        "en": "forward value above each arrow, gradient below it in red",
        "ko": "화살표 위는 순전파의 값, 아래 빨간색은 역전파의 미분",
    },
    # Titles of the pictures of the examples; {name} shows the value of that name.
    "title_apple": {
        "en": "Buying apples: {apple} × {apple count} × {tax} = {price}",
        "ko": "사과 쇼핑: {사과} × {사과 개수} × {소비세} = {지불 금액}",
    },
    "title_apple-orange": {
        "en": "Buying apples and oranges: ({apple} × {apple count} + {orange} × "
        "{orange count}) × {tax} = {price}",
        "ko": "사과와 귤 쇼핑: ({사과} × {사과 개수} + {귤} × {귤 개수}) × {소비세} = {지불 금액}",
    },
    "title_sigmoid": {
        "en": "Figure 5-19: the sigmoid y = 1 / (1 + exp(−x)) from ×(−1), exp, +1 and / nodes",
        "ko": "그림 5-19: ×(−1), exp, +1, / 노드로 만든 시그모이드 y = 1 / (1 + exp(−x))",
    },
    "title_affine": {
        "en": "Figure 5-25: Affine Y = X · W + b as a dot node and an add node",
        "ko": "그림 5-25: dot 노드와 + 노드로 만든 Affine 계층 Y = X · W + b",
    },
    "title_softmax-with-loss": {
        "en": "Appendix A: Softmax-with-Loss from exp, sum, /, ×, log and × t nodes",
        "ko": "부록 A: exp, sum, /, ×, log, × t 노드로 만든 Softmax-with-Loss 계층",
    },
    "title_network": {
        "en": "{network}({sizes}) on {samples} MNIST digits, layer by layer",
        "ko": "MNIST 숫자 {samples}개에 대한 {network}({sizes}), 계층별로",
    },
    # The page
    "inputs": {"en": "Inputs", "ko": "입력"},
    "inputs_note": {
        "en": "Change an input: the values flow forward and the gradients flow back.",
        "ko": "입력을 바꾸면 값이 순전파로, 미분이 역전파로 흐릅니다.",
    },
    "recorded_note": {
        "en": "The values are the recorded ones: this graph holds arrays or a node the page "
        "cannot recompute.",
        "ko": "기록된 값입니다: 이 그래프는 배열이나 페이지가 다시 계산할 수 없는 노드를 "
        "담고 있습니다.",
    },
    "steps": {"en": "Backward, node by node", "ko": "역전파, 노드 하나씩"},
    "step_start": {"en": "« start", "ko": "« 처음"},
    "step_back": {"en": "◀ back", "ko": "◀ 이전"},
    "step_next": {"en": "step ▶", "ko": "다음 ▶"},
    "step_all": {"en": "all »", "ko": "끝 »"},
    "step_of": {"en": "step {k} of {n}", "ko": "{n}단계 중 {k}단계"},
}


def message(key: str, lang: str = "en", **fields: object) -> str:
    """The text of ``key`` in ``lang`` (``"en"`` or ``"ko"``), with ``fields`` filled in
    (given none, the text as it is: a picture's title names values in braces)."""
    if lang not in LANGUAGES:
        raise ArgumentError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    text = _MESSAGES[key][lang]
    return text.format(**fields) if fields else text  # a title keeps its {name} fields


def display_width(text: str) -> int:
    """The columns ``text`` takes in a terminal: two for each wide character (Hangul)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` columns, as :func:`display_width` counts."""
    return text + " " * max(0, width - display_width(text))


def korean_font() -> str | None:
    """The family of an installed font with Hangul, NanumGothic first; None where there is
    none, or no ``fc-list`` to ask (fontconfig, which Graphviz's dot draws text with)."""
    program = shutil.which("fc-list")
    if program is None:
        return None
    try:
        listed = subprocess.run(
            [program, ":lang=ko", "family"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    families = [line.split(",")[0].strip() for line in listed.splitlines() if line.strip()]
    return "NanumGothic" if "NanumGothic" in families else (min(families) if families else None)
