"""The description a ``chainrule train`` checkpoint carries, checked against one schema.

A checkpoint's ``meta`` says which network it holds, how it was trained and what it
measured. :data:`SCHEMA` states every field once, with its type and range; the file is
checked against it before anything is built from it, so a wrong field is one line naming
the file and the field. Every size is bounded, and the parameters the description
implies (:func:`parameter_shapes`) are compared with the stored ones before any array is
inflated: no description can ask for a network larger than memory, or one its stored
weights could not fill.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from chainrule.checkpoint import Checkpoint, load_checkpoint, physical_memory
from chainrule.errors import CheckpointError

__all__ = [
    "MAX_HIDDEN_LAYERS",
    "SCHEMA",
    "check_description",
    "load_described",
    "network_too_large",
    "parameter_shapes",
]

MAX_HIDDEN_LAYERS = 1000
MAX_WIDTH = 2**31 - 1  # a layer's width, a batch size, an image side
MAX_COUNT = 10**9  # epochs, steps, and the length of a history
MAX_SEED = 2**63 - 1
# Training holds each parameter about four times over: the weights, their gradients, and
# up to two moments of the optimiser (Adam's); a network that needs more is refused.
COPIES_WHILE_TRAINING = 4


class _Invalid(Exception):
    """A field that breaks the schema: ``field`` is its dotted path, ``why`` the rule."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field, self.why = field, why


Check = Callable[[Any, str], None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def integer(low: int, high: int) -> Check:
    def check(value: Any, field: str) -> None:
        if not _is_int(value) or not low <= value <= high:
            raise _Invalid(field, f"must be an integer from {low} to {high}, not {_short(value)}")

    return check


def number(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: Any, field: str) -> None:
        if not _is_number(value) or not low <= value <= high:
            why = f"must be a finite number in [{low}, {high}], not {_short(value)}"
            raise _Invalid(field, why)

    return check


def one_of(*choices: Any) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, (str, bool)) or value not in choices:
            shown = ", ".join(map(str, choices))
            raise _Invalid(field, f"must be one of {shown}, not {_short(value)}")

    return check


def text(max_length: int = 4096) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, str) or len(value) > max_length:
            raise _Invalid(field, f"must be a string of at most {max_length} characters")

    return check


def boolean(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise _Invalid(field, f"must be true or false, not {_short(value)}")


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
            except _Invalid:
                continue
        checks[-1](value, field)

    return check


def list_of(item: Check, min_length: int = 0, max_length: int = MAX_COUNT) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, list) or not min_length <= len(value) <= max_length:
            raise _Invalid(field, f"must be a list of {min_length} to {max_length} items")
        for index, entry in enumerate(value):
            item(entry, f"{field}[{index}]")

    return check


def record(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """A JSON object with the ``required`` fields, and perhaps the ``optional`` ones."""
    optional = optional or {}

    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise _Invalid(field, f"must be an object, not {type(value).__name__}")
        for name, rule in required.items():
            if name not in value:
                raise _Invalid(f"{field}.{name}", "is missing")
            rule(value[name], f"{field}.{name}")
        for name, entry in value.items():
            if name in optional:
                optional[name](entry, f"{field}.{name}")
            elif name not in required:
                raise _Invalid(f"{field}.{_short(name)}", "is not a field of this object")

    return check


def dict_of(entry: Check, max_length: int = MAX_HIDDEN_LAYERS) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict) or len(value) > max_length:
            raise _Invalid(field, f"must be an object of at most {max_length} entries")
        for name, item in value.items():
            entry(item, f"{field}.{_short(name)}")

    return check


def by_kind(key: str, kinds: Mapping[str, Check]) -> Check:
    """An object whose ``key`` field names its kind, checked by that kind's rule."""

    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise _Invalid(field, f"must be an object, not {type(value).__name__}")
        one_of(*kinds)(value.get(key), f"{field}.{key}")
        kinds[value[key]](value, field)

    return check


def _any_object(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise _Invalid(field, f"must be an object, not {type(value).__name__}")


def _optimizer(value: Any, field: str) -> None:
    from chainrule.optim import OPTIMIZERS

    _any_object(value, field)
    record({"name": one_of(*OPTIMIZERS)})({"name": value.get("name")}, field)
    hyper = OPTIMIZERS[value["name"]]._hyper
    record({}, dict.fromkeys(hyper, number(0)))(
        {k: v for k, v in value.items() if k != "name"}, field
    )


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
        raise _Invalid(f"{field}.epochs", "exactly one of epochs and iters must be set")


_WIDTH = integer(1, MAX_WIDTH)
_DTYPE = one_of("float32", "float64")
_FULLY_CONNECTED = {
    "network": one_of("MultiLayerNet", "TwoLayerNet", "MultiLayerNetExtend"),
    "input_size": _WIDTH,
    "hidden_size_list": list_of(_WIDTH, 1, MAX_HIDDEN_LAYERS),
    "output_size": _WIDTH,
    "activation": one_of("relu", "sigmoid"),
    "weight_decay_lambda": number(0),
    "dtype": _DTYPE,
}
_EVALUATION = record(
    {
        "epoch": number(0),
        "step": integer(0, MAX_COUNT),
        "train_loss": number(),
        "train_accuracy": number(0, 1),
    },
    {"test_loss": nullable(number()), "test_accuracy": nullable(number(0, 1))},
)
_NUMBERS = list_of(number(), 1, MAX_WIDTH)
_CONV_PARAM = record(
    {
        "filter_num": _WIDTH,
        "filter_size": _WIDTH,
        "pad": integer(0, MAX_WIDTH),
        "stride": _WIDTH,
    }
)

#: Every field of a ``chainrule train`` checkpoint's description, with its rule.
#: ``network`` is all that evaluation needs; resuming needs the rest (RESUME_NEEDS).
SCHEMA = record(
    {
        "network": by_kind(
            "network",
            {
                "TwoLayerNet": record(_FULLY_CONNECTED),
                "MultiLayerNet": record(_FULLY_CONNECTED),
                "MultiLayerNetExtend": record(
                    {
                        **_FULLY_CONNECTED,
                        "use_dropout": boolean,
                        "dropout_ration": number(0, 1),
                        "use_batchnorm": boolean,
                    }
                ),
                "SimpleConvNet": record(
                    {
                        "network": one_of("SimpleConvNet"),
                        "input_dim": list_of(_WIDTH, 3, 3),
                        "conv_param": _CONV_PARAM,
                        "hidden_size": _WIDTH,
                        "output_size": _WIDTH,
                        "dtype": _DTYPE,
                    }
                ),
                "DeepConvNet": record(
                    {
                        "network": one_of("DeepConvNet"),
                        "input_dim": list_of(_WIDTH, 3, 3),
                        **{f"conv_param_{i}": _CONV_PARAM for i in range(1, 7)},
                        "hidden_size": _WIDTH,
                        "output_size": _WIDTH,
                        "dtype": _DTYPE,
                    }
                ),
            },
        )
    },
    {
        "optimizer": _optimizer,
        "train": _train,
        "history": record(
            {
                "losses": list_of(number(), 0, MAX_COUNT),
                "evaluations": list_of(_EVALUATION, 0, MAX_COUNT),
            }
        ),
        "running_stats": dict_of(record({"running_mean": _NUMBERS, "running_var": _NUMBERS})),
        "dropout_rng": dict_of(_any_object),
        "chainrule_version": text(100),
    },
)
RESUME_NEEDS = ("optimizer", "train", "history")


def parameter_shapes(network: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of the network a (checked) ``network`` config describes,
    computed without building it (tests hold it equal to the networks' own ``params``)."""
    if network["network"] == "SimpleConvNet":
        channels, height, width = network["input_dim"]
        conv = network["conv_param"]
        filters, size = conv["filter_num"], conv["filter_size"]
        pad, stride = conv["pad"], conv["stride"]
        conv_h = (height + 2 * pad - size) // stride + 1
        conv_w = (width + 2 * pad - size) // stride + 1
        pooled = filters * max(conv_h // 2, 0) * max(conv_w // 2, 0)
        hidden, out = network["hidden_size"], network["output_size"]
        return {
            "W1": (filters, channels, size, size),
            "b1": (filters,),
            "W2": (pooled, hidden),
            "b2": (hidden,),
            "W3": (hidden, out),
            "b3": (out,),
        }
    if network["network"] == "DeepConvNet":
        return _deep_convnet_shapes(network)
    hidden = network["hidden_size_list"]
    sizes = [network["input_size"], *hidden, network["output_size"]]
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, len(sizes)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (sizes[i - 1], sizes[i]), (sizes[i],)
    if network.get("use_batchnorm"):
        for i, width in enumerate(hidden, start=1):
            shapes[f"gamma{i}"], shapes[f"beta{i}"] = (width,), (width,)
    return shapes


def _deep_convnet_shapes(network: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """DeepConvNet's parameters: six convolutions, a 2×2 pooling after every second."""
    channels, height, width = network["input_dim"]
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, 7):
        conv = network[f"conv_param_{i}"]
        filters, size = conv["filter_num"], conv["filter_size"]
        shapes[f"W{i}"], shapes[f"b{i}"] = (filters, channels, size, size), (filters,)
        height = (height + 2 * conv["pad"] - size) // conv["stride"] + 1
        width = (width + 2 * conv["pad"] - size) // conv["stride"] + 1
        if i % 2 == 0:
            height, width = max(height, 0) // 2, max(width, 0) // 2
        channels = filters
    hidden, out = network["hidden_size"], network["output_size"]
    flat = channels * max(height, 0) * max(width, 0)
    shapes.update({"W7": (flat, hidden), "b7": (hidden,), "W8": (hidden, out), "b8": (out,)})
    return shapes


def network_too_large(network: Mapping[str, Any]) -> str | None:
    """Why the network a (checked) config describes cannot be trained here, or None."""
    if network["network"] == "TwoLayerNet" and len(network["hidden_size_list"]) != 1:
        return "a TwoLayerNet has exactly one hidden layer"
    values = sum(math.prod(shape) for shape in parameter_shapes(network).values())
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
    try:
        SCHEMA(meta, "description")
        for name in RESUME_NEEDS if to_resume else ():
            if name not in meta:
                raise _Invalid(f"description.{name}", "is missing (resuming needs it)")
    except _Invalid as invalid:
        raise CheckpointError(
            f"{path}: not a checkpoint 'chainrule train' wrote: {invalid.field} {invalid.why}"
        ) from None
    too_large = network_too_large(meta["network"])
    if too_large is not None:
        raise CheckpointError(f"{path}: the network its description gives is refused: {too_large}")


def load_described(path: str, *, to_resume: bool = False) -> Checkpoint:
    """The checkpoint at ``path``, its description checked by :func:`check_description`,
    and its stored weights against the network the description gives, before any is
    read: what ``chainrule train --resume``, ``evaluate`` and ``mistakes`` open."""

    def expected(meta: dict) -> dict:
        check_description(meta, path, to_resume=to_resume)
        dtype = meta["network"]["dtype"]
        return {name: (shape, dtype) for name, shape in parameter_shapes(meta["network"]).items()}

    return load_checkpoint(path, expected_params=expected)
