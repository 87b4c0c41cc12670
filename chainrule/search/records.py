"""What a line of a results file must hold to be a trial record, and how a wrong one is told.

:func:`_record_problem` names what is wrong with one record (a missing or mistyped field,
settings that are not those of its search's trial); :func:`_refuse_another_search` names
what differs when a record is of another search. :func:`_short` writes a value as the
messages show it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainrule.errors import DataError
from chainrule.search.space import Search


def _short(value: Any, quote: bool = True) -> str:
    """A value as a message shows it: its JSON (a text unquoted, unless ``quote``), at most
    40 characters."""
    if isinstance(value, str) and not quote:
        text = value
    elif isinstance(value, (str, list, dict)):
        text = json.dumps(value)
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


# What each field of a record must hold, and how to say it.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "val_accuracy": (lambda v: v is None or _is_fraction(v), "null or a number from 0 to 1"),
    "train_accuracy": (lambda v: v is None or _is_fraction(v), "null or a number from 0 to 1"),
    "val_loss": (lambda v: v is None or _is_number(v), "null or a number"),
    "val_accuracies": (
        lambda v: isinstance(v, list) and all(_is_fraction(a) for a in v),
        "a list of numbers from 0 to 1",
    ),
    "train_accuracies": (
        lambda v: isinstance(v, list) and all(_is_fraction(a) for a in v),
        "a list of numbers from 0 to 1",
    ),
    "diverged": (lambda v: v is None or isinstance(v, str), "null or a message"),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a number of seconds"),
    "dataset": (lambda v: isinstance(v, str), "a name"),
    "epochs": (lambda v: _is_int(v) and v >= 1, "a positive whole number"),
    "seed": (_is_int, "a whole number"),
}


def _record_problem(record: Any, search: Search | None) -> str | None:
    """What is wrong with one line's record, or None if it is a trial record (of ``search``,
    if given) that a search can rank, print and plot."""
    if not isinstance(record, dict):
        return "not a trial record of chainrule search"
    trial, search_id = record.get("trial"), record.get("search_id")
    if not (_is_int(trial) and trial >= 0 and isinstance(search_id, str)):
        return "not a trial record of chainrule search (no trial number and search_id)"
    for name, (valid, meaning) in _FIELDS.items():
        if name not in record:
            return f"trial {trial} has no {name}"
        if not valid(record[name]):
            return f"trial {trial}'s {name} is {_short(record[name])}, not {meaning}"
    val, train = record["val_accuracies"], record["train_accuracies"]
    if len(val) != len(train):
        return f"trial {trial} has {len(val)} validation accuracies but {len(train)} training ones"
    if search is not None:
        for name, value in search.trial(trial).items():
            found = record.get(name)
            # type() too: 1.0 == 1 == True, but `--hidden 1.0` is not a width
            if type(found) is not type(value) or found != value:
                return (
                    f"trial {trial}'s {name} is {_short(found)}, but this search's trial "
                    f"{trial} has {_short(value)}"
                )
    return None


def _refuse_another_search(path: Path, number: int, record: dict, search: Search) -> None:
    """DataError if the record is of another search than ``search``, naming what differs."""
    search_id = record.get("search_id")
    if search_id == search.id:
        return
    theirs = record.get("search")
    differences = _differences(theirs, search.describe()) if isinstance(theirs, dict) else []
    raise DataError(
        f"{path} holds the trials of another search (line {number}: "
        + ("; ".join(differences) if differences else f"search {_short(search_id, False)}")
        + "): give the same options to continue it, or another results file"
    )


def _differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What differs between two searches' descriptions: ``'epochs 3 there, 4 here'`` (the
    first four, values cut to a readable length)."""

    def flat(description: dict[str, Any]) -> dict[str, Any]:
        space = description.get("space")
        space = space if isinstance(space, dict) else {}
        rest = {k: v for k, v in description.items() if k != "space"}
        return {**{str(k).replace("_", " "): v for k, v in space.items()}, **rest}

    there, here = flat(theirs), flat(ours)
    unset = object()

    def shown(side: dict[str, Any], name: str) -> str:
        return "unset" if side.get(name, unset) is unset else _short(side[name], quote=False)

    found = [
        f"{name[:40]} {shown(there, name)} there, {shown(here, name)} here"
        for name in sorted(set(there) | set(here))
        if there.get(name, unset) != here.get(name, unset)
    ]
    return found[:4] + ([f"{len(found) - 4} more"] if len(found) > 4 else [])
