"""What a search samples: ranges of hyperparameters and the search that draws its trials.

A *space* maps each of ``chainrule train``'s hyperparameters to a :class:`LogUniform`
range, a :class:`Choice` or a fixed value; :meth:`Search.trial` turns a trial's number into
its settings, a pure function of ``(seed, number)``, so a trial is the same whichever
process runs it, in whatever order, in whichever run of a resumed search.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError

__all__ = ["BOOK_SPACE", "Choice", "LogUniform", "Search"]


@dataclass(frozen=True)
class LogUniform:
    """A number drawn as ``10**U(log10 low, log10 high)``: each power of ten between ``low``
    and ``high`` equally likely, the book's way of drawing a learning rate. With
    ``integer=True`` the draw is rounded to an integer in ``[low, high]``."""

    low: float
    high: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low > 0):
            raise ArgumentError(f"a log-uniform range needs 0 < low <= high, got {self}")
        if self.low > self.high:
            raise ArgumentError(f"a log-uniform range needs 0 < low <= high, got {self}")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ArgumentError(f"no integer lies in the range {self}")

    def sample(self, rng: np.random.Generator) -> float | int:
        value = 10 ** rng.uniform(math.log10(self.low), math.log10(self.high))
        if self.integer:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        return float(min(max(value, self.low), self.high))

    def __str__(self) -> str:
        number = (lambda v: str(int(v))) if self.integer else repr
        return f"{number(self.low)}..{number(self.high)}"


@dataclass(frozen=True)
class Choice:
    """One of ``options``, each equally likely (numbers, names or other JSON values)."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) == 0:
            raise ArgumentError("a choice needs at least one option")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def __str__(self) -> str:
        return ",".join(repr(o) if isinstance(o, float) else str(o) for o in self.options)


# The book's search (chapter 6): the learning rate and the weight decay λ, log-uniform.
BOOK_SPACE: dict[str, Any] = {
    "lr": LogUniform(1e-6, 1e-2),
    "weight_decay": LogUniform(1e-8, 1e-4),
}


def _describe(value: Any) -> Any:
    return str(value) if isinstance(value, (LogUniform, Choice)) else value


@dataclass(frozen=True)
class Search:
    """What a search samples and how each trial trains, which together name its results.

    ``space`` maps a hyperparameter's name (those of ``chainrule train``, with
    underscores: ``lr``, ``weight_decay``, ``hidden``, ``optimizer``, ``batch_size`` ...)
    to a :class:`LogUniform`, a :class:`Choice` or a fixed value. ``seed`` chooses the
    validation split and every trial's draws; ``validation`` is the share of the training
    data held out; ``dataset`` only labels the records (the caller loads the data).
    """

    space: Mapping[str, Any]
    epochs: int
    seed: int = 0
    validation: float = 0.2
    dataset: str = "mnist-5k"
    _id: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ArgumentError(f"epochs must be a positive integer, got {self.epochs!r}")
        reserved = {"epochs", "seed", "dataset"} & set(self.space)
        if reserved:
            raise ArgumentError(
                f"{', '.join(sorted(reserved))}: set by the search, not in its space"
            )
        if not 0 < self.validation < 1:
            raise ArgumentError(f"validation must lie between 0 and 1, got {self.validation!r}")
        text = json.dumps(self.describe(), sort_keys=True)
        object.__setattr__(self, "_id", hashlib.sha256(text.encode()).hexdigest()[:12])

    def describe(self) -> dict[str, Any]:
        """The search as plain JSON values: ranges as text, ``'1e-06..0.01'``, ``'sgd,adam'``."""
        return {
            "space": {name: _describe(value) for name, value in sorted(self.space.items())},
            "epochs": self.epochs,
            "seed": self.seed,
            "validation": self.validation,
            "dataset": self.dataset,
        }

    @property
    def id(self) -> str:
        """12 hex digits naming this search: its records carry it, another's are refused."""
        return self._id

    def trial(self, number: int) -> dict[str, Any]:
        """Trial ``number``'s settings: its own training ``seed``, one draw of every range
        (in name order), the fixed values, ``epochs`` and ``dataset``.

        A pure function of ``(seed, number)`` and the space: the generator of trial ``n``
        is seeded with ``[seed, n]``, so no trial depends on which ran before it.
        """
        rng = np.random.default_rng([self.seed, number])
        settings: dict[str, Any] = {"dataset": self.dataset, "seed": int(rng.integers(2**31))}
        for name in sorted(self.space):
            value = self.space[name]
            settings[name] = value.sample(rng) if isinstance(value, (LogUniform, Choice)) else value
        settings["epochs"] = self.epochs
        return settings

    def searched(self) -> list[str]:
        """The names of the hyperparameters drawn from a range or a choice, in name order."""
        return [n for n in sorted(self.space) if isinstance(self.space[n], (LogUniform, Choice))]
