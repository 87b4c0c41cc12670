"""Fuzzing the results file of `chainrule search`: random and mutated lines (hypothesis).

A results file is read back on every run of a search, and a user may edit it, merge two,
or point --results at anything. Whatever a line holds, reading either gives records the
search can rank, print and plot, or one line of DataError naming the file and the line;
nothing else may escape (KeyError, TypeError, RecursionError ...).
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.cli.searching import _table, _trial_line, train_command
from chainrule.errors import DataError
from chainrule.search import BOOK_SPACE, Choice, Search, rank, read_results

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SEARCH = Search({**BOOK_SPACE, "hidden": Choice((10, 20)), "layers": 1}, epochs=2, seed=3)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def valid(trial):
    """Trial ``trial``'s record, as run_search writes it."""
    return {
        "search_id": SEARCH.id,
        "trial": trial,
        **SEARCH.trial(trial),
        "val_accuracy": 0.5,
        "val_loss": 1.25,
        "train_accuracy": 0.75,
        "val_accuracies": [0.25, 0.5],
        "train_accuracies": [0.5, 0.75],
        "diverged": None,
        "seconds": 3.0,
        "host": "h",
        "worker": None,
        "search": SEARCH.describe(),
    }


@st.composite
def lines(draw):
    """One line of a results file: a valid record, one with a field changed or dropped,
    any JSON value, or any text."""
    kind = draw(st.sampled_from(["valid", "changed", "dropped", "json", "text"]))
    record = valid(draw(st.integers(0, 5)))
    if kind == "valid":
        return json.dumps(record)
    if kind == "changed":
        name = draw(st.sampled_from([*sorted(record), "extra"]))
        record[name] = draw(json_values)
        return json.dumps(record, allow_nan=True)
    if kind == "dropped":
        del record[draw(st.sampled_from(sorted(record)))]
        return json.dumps(record)
    if kind == "json":
        return json.dumps(draw(json_values), allow_nan=True)
    return draw(st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t))


@FUZZ
@given(st.lists(lines(), min_size=1, max_size=6), st.booleans())
def test_a_results_file_gives_usable_records_or_one_line_naming_the_line(tmp_path, text, newline):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(text) + ("\n" if newline else ""), encoding="utf-8")
    for search in (SEARCH, None):
        try:
            records = read_results(path, search)
        except DataError as error:
            message = str(error)
            assert "\n" not in message and len(message) < 500 + len(str(path))
            assert message.startswith(str(path))
            assert "line " in message
            continue
        ranked = rank(records)
        assert len({r["trial"] for r in ranked}) == len(ranked)
        if search is not None:  # what the command prints of them
            _table(ranked, search.searched(), 20)
            for r in ranked:
                _trial_line(r, search.searched(), 1, 1)
                train_command(r)
