"""Rules a JSON value is checked against, field by field, before anything is built from it.

Each rule is a function ``check(value, field)`` that returns nothing or raises
:class:`Invalid` with the field's dotted path (``description.network.input_size``) and
the rule it breaks; rules nest as the JSON does. :mod:`chainrule.description` states a
checkpoint's description with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Check",
    "Invalid",
    "any_object",
    "anything",
    "boolean",
    "by_kind",
    "dict_of",
    "either",
    "integer",
    "list_of",
    "nullable",
    "number",
    "one_of",
    "record",
    "text",
]


class Invalid(Exception):
    """A field that breaks a rule: ``field`` is its dotted path, ``why`` the rule."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field, self.why = field, why


Check = Callable[[Any, str], None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters, as a message quotes what it found."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def integer(low: int, high: int) -> Check:
    def check(value: Any, field: str) -> None:
        if not _is_int(value) or not low <= value <= high:
            raise Invalid(field, f"must be an integer from {low} to {high}, not {_short(value)}")

    return check


def number(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: Any, field: str) -> None:
        if not _is_number(value) or not low <= value <= high:
            why = f"must be a finite number in [{low}, {high}], not {_short(value)}"
            raise Invalid(field, why)

    return check


def one_of(*choices: Any) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, (str, bool)) or value not in choices:
            shown = ", ".join(map(str, choices))
            raise Invalid(field, f"must be one of {shown}, not {_short(value)}")

    return check


def text(max_length: int = 4096) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, str) or len(value) > max_length:
            raise Invalid(field, f"must be a string of at most {max_length} characters")

    return check


def boolean(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(field, f"must be true or false, not {_short(value)}")


def anything(value: Any, field: str) -> None:
    """Any JSON value: a field whose contents are a caller's own."""


def any_object(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(field, f"must be an object, not {type(value).__name__}")


def nullable(check: Check) -> Check:
    def nullable_check(value: Any, field: str) -> None:
        if value is not None:
            check(value, field)

    return nullable_check


def either(*checks: Check) -> Check:
    """Passes when one of ``checks`` does; else the last one's complaint."""

    def check(value: Any, field: str) -> None:
        for option in checks[:-1]:
            try:
                option(value, field)
                return
            except Invalid:
                continue
        checks[-1](value, field)

    return check


def list_of(item: Check, min_length: int, max_length: int) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, list) or not min_length <= len(value) <= max_length:
            raise Invalid(field, f"must be a list of {min_length} to {max_length} items")
        for index, entry in enumerate(value):
            item(entry, f"{field}[{index}]")

    return check


def record(
    required: Mapping[str, Check],
    optional: Mapping[str, Check] | None = None,
    *,
    others: Check | None = None,
) -> Check:
    """A JSON object with the ``required`` fields, and perhaps the ``optional`` ones; any
    other field is refused, or with ``others``, checked by it."""
    optional = optional or {}

    def check(value: Any, field: str) -> None:
        any_object(value, field)
        for name, rule in required.items():
            if name not in value:
                raise Invalid(f"{field}.{name}", "is missing")
            rule(value[name], f"{field}.{name}")
        for name, entry in value.items():
            if name in optional:
                optional[name](entry, f"{field}.{name}")
            elif name in required:
                continue
            elif others is None:
                raise Invalid(f"{field}.{_short(name)}", "is not a field of this object")
            else:
                others(entry, f"{field}.{_short(name)}")

    return check


def dict_of(entry: Check, max_length: int) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict) or len(value) > max_length:
            raise Invalid(field, f"must be an object of at most {max_length} entries")
        for name, item in value.items():
            entry(item, f"{field}.{_short(name)}")

    return check


def by_kind(key: str, kinds: Mapping[str, Check]) -> Check:
    """An object whose ``key`` field names its kind, checked by that kind's rule."""

    def check(value: Any, field: str) -> None:
        any_object(value, field)
        one_of(*kinds)(value.get(key), f"{field}.{key}")
        kinds[value[key]](value, field)

    return check
