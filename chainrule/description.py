"""The description (``meta``) of a training checkpoint, checked before anything is built.

:func:`chainrule.training_state.save_training` writes, beside the arrays, a description:
the network's ``config()``, the optimiser, the History, batch normalisation's running
statistics and the dropout generators' state. :data:`TRAINING_STATE` states each of
those fields once, with its type and range; every size is bounded. The parameters a
network description implies (:func:`parameter_shapes`) are computed without building
the network, so a loader compares them with the file's stored arrays before any is read
and before any network is allocated: no description can ask for a network larger than
its file, or one its stored weights could not fill. ``chainrule train`` adds its own
entry (``train``) and checks the same fields (:mod:`chainrule.cli.train_description`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chainrule.errors import CheckpointError
from chainrule.schema import (
    Check,
    Invalid,
    any_object,
    anything,
    boolean,
    by_kind,
    dict_of,
    integer,
    list_of,
    nullable,
    number,
    one_of,
    record,
    text,
)

__all__ = [
    "LAYER",
    "MAX_HIDDEN_LAYERS",
    "NETWORK",
    "NETWORK_KINDS",
    "STATE_ENTRIES",
    "TRAINING_STATE",
    "check_description",
    "described_params",
    "parameter_count",
    "parameter_shapes",
]

MAX_HIDDEN_LAYERS = 1000
MAX_LAYERS = 10 * MAX_HIDDEN_LAYERS  # a Sequential's layers, activations included
MAX_WIDTH = 2**31 - 1  # a layer's width, a batch size, an image side
MAX_COUNT = 10**9  # epochs, steps, and the length of a history


def _optimizer(value: Any, field: str) -> None:
    from chainrule.optim import OPTIMIZERS

    any_object(value, field)
    record({"name": one_of(*OPTIMIZERS)})({"name": value.get("name")}, field)
    hyper = OPTIMIZERS[value["name"]]._hyper
    record({}, dict.fromkeys(hyper, number(0)))(
        {k: v for k, v in value.items() if k != "name"}, field
    )


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
_CONV_PARAM = record(
    {"filter_num": _WIDTH, "filter_size": _WIDTH, "pad": integer(0, MAX_WIDTH), "stride": _WIDTH}
)
_CONVNET = {"input_dim": list_of(_WIDTH, 3, 3), "hidden_size": _WIDTH, "output_size": _WIDTH}
_STEP = {"stride": _WIDTH, "pad": integer(0, MAX_WIDTH)}


def _layer(kind: str, **fields: Check) -> Check:
    return record({"layer": one_of(kind), **fields})


#: Each layer of a Sequential, as its ``config()`` describes it.
LAYER = by_kind(
    "layer",
    {
        "Relu": _layer("Relu"),
        "Sigmoid": _layer("Sigmoid"),
        "Affine": _layer("Affine", shape=list_of(_WIDTH, 2, 2)),
        "Convolution": _layer("Convolution", shape=list_of(_WIDTH, 4, 4), **_STEP),
        "Pooling": _layer("Pooling", pool_h=_WIDTH, pool_w=_WIDTH, **_STEP),
        "Dropout": _layer("Dropout", dropout_ratio=number(0, 1)),
        "BatchNormalization": _layer(
            "BatchNormalization", features=_WIDTH, momentum=number(0, 1), eps=number(0)
        ),
    },
)

#: The rule for each of chainrule's networks' ``config()``, by the class's name.
NETWORK_KINDS: dict[str, Check] = {
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
            **_CONVNET,
            "conv_param": _CONV_PARAM,
            "dtype": _DTYPE,
        }
    ),
    "DeepConvNet": record(
        {
            "network": one_of("DeepConvNet"),
            **_CONVNET,
            **{f"conv_param_{i}": _CONV_PARAM for i in range(1, 7)},
            "dtype": _DTYPE,
        }
    ),
    "Sequential": record(
        {
            "network": one_of("Sequential"),
            "layers": list_of(LAYER, 1, MAX_LAYERS),
            "dtype": _DTYPE,
        }
    ),
}
#: A network's ``config()``, for any of chainrule's networks.
NETWORK = by_kind("network", NETWORK_KINDS)

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

#: The description's entries that ``save_training`` writes beside ``network``.
STATE_ENTRIES: dict[str, Check] = {
    "optimizer": _optimizer,
    "history": record(
        {
            "losses": list_of(number(), 0, MAX_COUNT),
            "evaluations": list_of(_EVALUATION, 0, MAX_COUNT),
        }
    ),
    "running_stats": dict_of(
        record({"running_mean": _NUMBERS, "running_var": _NUMBERS}), MAX_LAYERS
    ),
    "dropout_rng": dict_of(any_object, MAX_LAYERS),
    "chainrule_version": text(100),
}

#: What ``save_training`` writes; the caller's own entries (its ``meta``) are its own.
TRAINING_STATE = record({"network": NETWORK}, STATE_ENTRIES, others=anything)


def check_description(
    meta: Any,
    path: str,
    schema: Check = TRAINING_STATE,
    *,
    needs: tuple[str, ...] = (),
    writer: str = "save_training",
) -> None:
    """CheckpointError, one line naming ``path`` and the field, unless ``meta`` follows
    ``schema`` and holds each entry of ``needs`` (``writer`` names, in the message, what
    writes such files)."""
    try:
        schema(meta, "description")
        for name in needs:
            if name not in meta:
                raise Invalid(f"description.{name}", "is missing (resuming needs it)")
    except Invalid as invalid:
        raise CheckpointError(
            f"{path}: not a checkpoint {writer} wrote: {invalid.field} {invalid.why}"
        ) from None


def described_params(network: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each parameter's ``(shape, dtype)`` in the network a (checked) ``network``
    description gives: what ``load_checkpoint``'s ``expected_params`` returns."""
    dtype = network["dtype"]
    return {name: (shape, dtype) for name, shape in parameter_shapes(network).items()}


def parameter_shapes(network: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of the network a (checked) ``network`` config describes,
    computed without building it (tests hold it equal to the networks' own ``params``)."""
    kind = network["network"]
    if kind == "SimpleConvNet":
        return _simple_convnet_shapes(network)
    if kind == "DeepConvNet":
        return _deep_convnet_shapes(network)
    if kind == "Sequential":
        return _sequential_shapes(network["layers"])
    hidden = network["hidden_size_list"]
    sizes = [network["input_size"], *hidden, network["output_size"]]
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, len(sizes)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (sizes[i - 1], sizes[i]), (sizes[i],)
    if network.get("use_batchnorm"):
        for i, width in enumerate(hidden, start=1):
            shapes[f"gamma{i}"], shapes[f"beta{i}"] = (width,), (width,)
    return shapes


def _convolved(side: int, conv: Mapping[str, int]) -> int:
    return (side + 2 * conv["pad"] - conv["filter_size"]) // conv["stride"] + 1


def _simple_convnet_shapes(network: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """SimpleConvNet's parameters: a convolution, a 2×2 pooling, two Affine layers."""
    channels, height, width = network["input_dim"]
    conv = network["conv_param"]
    filters, size = conv["filter_num"], conv["filter_size"]
    conv_h, conv_w = _convolved(height, conv), _convolved(width, conv)
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


def _deep_convnet_shapes(network: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """DeepConvNet's parameters: six convolutions, a 2×2 pooling after every second."""
    channels, height, width = network["input_dim"]
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, 7):
        conv = network[f"conv_param_{i}"]
        filters, size = conv["filter_num"], conv["filter_size"]
        shapes[f"W{i}"], shapes[f"b{i}"] = (filters, channels, size, size), (filters,)
        height, width = _convolved(height, conv), _convolved(width, conv)
        if i % 2 == 0:
            height, width = max(height, 0) // 2, max(width, 0) // 2
        channels = filters
    hidden, out = network["hidden_size"], network["output_size"]
    flat = channels * max(height, 0) * max(width, 0)
    shapes.update({"W7": (flat, hidden), "b7": (hidden,), "W8": (hidden, out), "b8": (out,)})
    return shapes


def _sequential_shapes(layers: list[Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
    """A Sequential's parameters, named as ``chainrule.engine.plan.parameter_names`` names
    them: ``W1, b1, …`` by the layers with weights, ``gamma1, beta1, …`` by the batch
    normalisations."""
    shapes: dict[str, tuple[int, ...]] = {}
    weighted = normalised = 0
    for spec in layers:
        if spec["layer"] in ("Affine", "Convolution"):
            weighted += 1
            shape = tuple(spec["shape"])
            bias = shape[1] if spec["layer"] == "Affine" else shape[0]
            shapes[f"W{weighted}"], shapes[f"b{weighted}"] = shape, (bias,)
        elif spec["layer"] == "BatchNormalization":
            normalised += 1
            width = (spec["features"],)
            shapes[f"gamma{normalised}"], shapes[f"beta{normalised}"] = width, width
    return shapes


def parameter_count(network: Mapping[str, Any]) -> int:
    """How many numbers the parameters of a (checked) ``network`` description hold."""
    return sum(math.prod(shape) for shape in parameter_shapes(network).values())
