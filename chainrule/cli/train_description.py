"""The description a ``chainrule train`` checkpoint carries: the library's fields
(:mod:`chainrule.description`) and the run's own, ``train``, checked as one schema.

The file is checked against :data:`SCHEMA` before anything is built from it, so a wrong
field is one line naming the file and the field; the network it describes must fit in
memory while training, and its parameters (:func:`chainrule.description.parameter_shapes`)
must be the stored ones before any array is inflated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.checkpoint import Checkpoint, load_checkpoint, physical_memory
from chainrule.description import (
    MAX_COUNT,
    MAX_WIDTH,
    NETWORK_KINDS,
    STATE_ENTRIES,
    described_params,
    parameter_count,
)
from chainrule.description import check_description as check_fields
from chainrule.errors import CheckpointError
from chainrule.schema import (
    Invalid,
    by_kind,
    either,
    integer,
    nullable,
    number,
    one_of,
    record,
    text,
)

__all__ = [
    "SCHEMA",
    "check_description",
    "load_described",
    "network_too_large",
]

MAX_SEED = 2**63 - 1
# Training holds each parameter about four times over: the weights, their gradients, and
# up to two moments of the optimiser (Adam's); a network that needs more is refused.
COPIES_WHILE_TRAINING = 4


def _train(value: Any, field: str) -> None:
    from chainrule.data.mnist import DATASETS
    from chainrule.init import INIT_NAMES
    from chainrule.train import SAMPLINGS

    length = nullable(integer(1, MAX_COUNT))
    record(
        {
            "dataset": one_of(*DATASETS),
            "batch_size": integer(1, MAX_WIDTH),
            "seed": integer(0, MAX_SEED),
            "sampling": one_of(*SAMPLINGS),
            "init": nullable(either(one_of(*INIT_NAMES), number(0))),
            "epochs": length,
            "iters": length,
        },
        {"data_dir": nullable(text())},
    )(value, field)
    if (value["epochs"] is None) == (value["iters"] is None):
        raise Invalid(f"{field}.epochs", "exactly one of epochs and iters must be set")


#: Every field of a ``chainrule train`` checkpoint's description, with its rule.
#: ``network`` is all that evaluation needs; resuming needs the rest (RESUME_NEEDS).
SCHEMA = record(
    # the networks 'chainrule train' builds: a Sequential is the library's alone
    {"network": by_kind("network", {k: v for k, v in NETWORK_KINDS.items() if k != "Sequential"})},
    {**STATE_ENTRIES, "train": _train},
)
RESUME_NEEDS = ("optimizer", "train", "history")


def network_too_large(network: dict[str, Any]) -> str | None:
    """Why the network a (checked) config describes cannot be trained here, or None."""
    if network["network"] == "TwoLayerNet" and len(network["hidden_size_list"]) != 1:
        return "a TwoLayerNet has exactly one hidden layer"
    values = parameter_count(network)
    bytes_per_value = np.dtype(network["dtype"]).itemsize * COPIES_WHILE_TRAINING
    memory = physical_memory()
    if values * bytes_per_value > memory:
        return (
            f"its {values:,} parameters would take about "
            f"{values * bytes_per_value / 2**30:,.1f} GiB while training; this machine's "
            f"{memory / 2**30:,.1f} GiB of memory holds at most {memory // bytes_per_value:,}"
        )
    return None


def check_description(meta: Any, path: str, *, to_resume: bool = False) -> None:
    """CheckpointError, one line naming ``path`` and the field, unless ``meta`` follows
    SCHEMA (with every field resuming needs, when ``to_resume``) and describes a network
    that fits in memory."""
    needs = RESUME_NEEDS if to_resume else ()
    check_fields(meta, path, SCHEMA, needs=needs, writer="'chainrule train'")
    too_large = network_too_large(meta["network"])
    if too_large is not None:
        raise CheckpointError(f"{path}: the network its description gives is refused: {too_large}")


def load_described(path: str, *, to_resume: bool = False) -> Checkpoint:
    """The checkpoint at ``path``, its description checked by :func:`check_description`,
    and its stored weights against the network the description gives, before any is
    read: what ``chainrule train --resume``, ``evaluate`` and ``mistakes`` open."""

    def expected(meta: dict) -> dict:
        check_description(meta, path, to_resume=to_resume)
        return described_params(meta["network"])

    return load_checkpoint(path, expected_params=expected)
