"""``network_from_config``: the network a ``config()`` describes, whichever class wrote it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chainrule.networks.base import _LayerNetwork
from chainrule.networks.mlp import MultiLayerNet


def network_from_config(config: Mapping[str, Any]) -> _LayerNetwork:
    """The network (with fresh weights) a ``config()`` describes, whichever class wrote it:
    the class its ``"network"`` names, a MultiLayerNet where it names none."""
    return MultiLayerNet.from_config(config)
