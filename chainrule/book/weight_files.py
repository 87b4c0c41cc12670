"""Which network a file of the book's weights belongs to, from the arrays' names and shapes.

The book's ``save_params`` writes only the arrays; :func:`network_config` finds the
chainrule network they fit (its ``config()``, which ``network_from_config`` builds):

- ``W1`` … ``W8``, the first six filters (4-d): ``DeepConvNet`` on square images, with the
  book's paddings (1, 1, 1, 2, 1, 1) and strides of 1;
- ``W1`` filters, ``W2``, ``W3``: ``SimpleConvNet`` on square images (pad 0, stride 1, as
  the book trains it), the image size solved from ``W2``'s rows;
- matrices ``W1`` … ``Wn`` that chain: a fully connected ``MultiLayerNet`` (chapter 3's
  ``sample_weight.pkl`` is a sigmoid one: ``activation="sigmoid"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.checkpoint import check_params_match
from chainrule.errors import CheckpointError
from chainrule.networks import network_from_config

__all__ = ["network_config"]

_DEEP_PADS = (1, 1, 1, 2, 1, 1)


def _count(params: dict[str, np.ndarray]) -> int:
    return sum(1 for key in params if key.startswith("W"))


def _dtype(params: dict[str, np.ndarray]) -> str:
    return "float32" if params["W1"].dtype == np.float32 else "float64"


def _deep(params: dict[str, np.ndarray]) -> dict[str, Any]:
    convs = {
        f"conv_param_{i}": {
            "filter_num": len(params[f"W{i}"]),
            "filter_size": params[f"W{i}"].shape[2],
            "pad": pad,
            "stride": 1,
        }
        for i, pad in enumerate(_DEEP_PADS, start=1)
    }
    side = 28  # the book's; the check against W7 below refuses any other
    return {
        "network": "DeepConvNet",
        "input_dim": [params["W1"].shape[1], side, side],
        **convs,
        "hidden_size": params["W7"].shape[1],
        "output_size": params["W8"].shape[1],
    }


def _simple(params: dict[str, np.ndarray]) -> dict[str, Any]:
    filters, channels, size, _ = params["W1"].shape
    pooled = math.isqrt(len(params["W2"]) // max(filters, 1))
    return {
        "network": "SimpleConvNet",
        "input_dim": [channels, 2 * pooled + size - 1, 2 * pooled + size - 1],
        "conv_param": {"filter_num": filters, "filter_size": size, "pad": 0, "stride": 1},
        "hidden_size": params["W2"].shape[1],
        "output_size": params["W3"].shape[1],
    }


def _fully_connected(params: dict[str, np.ndarray], activation: str) -> dict[str, Any]:
    widths = [params["W1"].shape[0]] + [
        params[f"W{i}"].shape[1] for i in range(1, _count(params) + 1)
    ]
    return {
        "network": "MultiLayerNet",
        "input_size": widths[0],
        "hidden_size_list": widths[1:-1],
        "output_size": widths[-1],
        "activation": activation,
    }


def network_config(
    params: dict[str, np.ndarray], activation: str = "relu", name: str = "the weights"
) -> dict[str, Any]:
    """The ``config()`` of the chainrule network whose ``params`` these are, checked by
    building it; ``activation`` is a fully connected network's. CheckpointError, naming
    ``name``, for arrays that fit none of the book's networks."""
    if "W1" not in params:
        raise CheckpointError(f"{name}: no W1, so none of the book's networks")
    count = _count(params)
    if count == 8 and all(params[f"W{i}"].ndim == 4 for i in range(1, 7)):
        config = _deep(params)
    elif count == 3 and params["W1"].ndim == 4:
        config = _simple(params)
    elif all(params.get(f"W{i}", np.empty(0)).ndim == 2 for i in range(1, count + 1)):
        config = _fully_connected(params, activation)
    else:
        raise CheckpointError(f"{name}: arrays {sorted(params)} fit none of the book's networks")
    config["dtype"] = _dtype(params)
    try:
        network = network_from_config(config)
    except ValueError as error:
        raise CheckpointError(f"{name}: fits none of the book's networks ({error})") from None
    check_params_match(
        network.params, {k: v.astype(config["dtype"]) for k, v in params.items()}, name
    )
    return config
