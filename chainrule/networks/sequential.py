"""``Sequential``: a network of a learner's own list of chainrule layers, and the
description of each layer its config holds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError
from chainrule.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)
from chainrule.losses import SoftmaxWithLoss
from chainrule.networks.arguments import _network_dtype
from chainrule.networks.base import _LayerNetwork, _name_layers, _params_of


class Sequential(_LayerNetwork):
    """A network of a learner's own chainrule layers, in order, then ``last_layer`` (a
    new ``SoftmaxWithLoss()`` by default): trained by the engine like the book's.

    ``layers`` is a list of layers (Affine, Relu, Sigmoid, Convolution, Pooling, Dropout,
    BatchNormalization, or a learner's own node, which the layers then compute);
    ``self.layers`` names them ``Affine1``, ``Relu1``, ``Conv1``, … by kind. ``params``
    holds the very arrays of the layers, named as the book names them: ``W1, b1, …`` in
    the order of the layers with weights, ``gamma1, beta1, …`` for batch normalisation.
    ``dtype`` is the parameters' (float64 without any). ``predict(x, train_flg=False)``
    and ``loss(x, t, train_flg=False)`` run inference unless told; ``gradient``
    differentiates a training forward. ``config``/``from_config`` describe and rebuild
    the layers where they are all chainrule's: He-initialised weights (standard normals
    times ``sqrt(2 / fan_in)``, drawn with ``seed``), zero biases, batch normalisation's
    γ = 1 and β = 0.
    """

    accuracy_batch_size = 100

    def __init__(self, layers: Sequence[Any], last_layer: Any = None) -> None:
        layers = list(layers)
        if not layers:
            raise ArgumentError("Sequential: give at least one layer")
        self.layers = _name_layers(layers)
        self.last_layer = SoftmaxWithLoss() if last_layer is None else last_layer
        self.params = _params_of(layers)
        dtypes = {param.dtype for param in self.params.values()}
        if len(dtypes) > 1:
            raise ArgumentError(
                f"Sequential: the layers' parameters must share one dtype, got "
                f"{', '.join(sorted(d.name for d in dtypes))}"
            )
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float64)

    def _config_fields(self) -> dict[str, Any]:
        return {
            "layers": [_layer_config(layer) for layer in self.layers.values()],
            "dtype": self.dtype.name,
        }

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        rng, dtype = np.random.default_rng(seed), _network_dtype(config.get("dtype", "float64"))
        return {"layers": [_layer_of(spec, rng, dtype) for spec in config["layers"]]}

    def _summary(self) -> list[str]:
        return [" → ".join(self.layers)]


def _layer_config(layer: Any) -> dict[str, Any]:
    """A layer's kind and sizes, as :func:`_layer_of` rebuilds it."""
    kind = type(layer).__name__
    if type(layer) in (Relu, Sigmoid):
        return {"layer": kind}
    if type(layer) is Affine:
        return {"layer": kind, "shape": list(layer.W.shape)}
    if type(layer) is Convolution:
        return {
            "layer": kind,
            "shape": list(layer.W.shape),
            "stride": layer.stride,
            "pad": layer.pad,
        }
    if type(layer) is Pooling:
        window = {"pool_h": layer.pool_h, "pool_w": layer.pool_w}
        return {"layer": kind, **window, "stride": layer.stride, "pad": layer.pad}
    if type(layer) is Dropout:
        return {"layer": kind, "dropout_ratio": layer.dropout_ratio}
    if type(layer) is BatchNormalization:
        features = len(layer.gamma)
        return {"layer": kind, "features": features, "momentum": layer.momentum, "eps": layer.eps}
    raise ArgumentError(f"Sequential.config: a {kind} layer is not one of chainrule's")


def _layer_of(spec: dict[str, Any], rng: np.random.Generator, dtype: np.dtype) -> Any:
    """The layer a :func:`_layer_config` describes, with fresh parameters."""
    kind, simple = spec.get("layer"), {"Relu": Relu, "Sigmoid": Sigmoid}
    if kind in simple:
        return simple[kind]()
    if kind in ("Affine", "Convolution"):
        shape = tuple(spec["shape"])
        fan_in = math.prod(shape[:1] if kind == "Affine" else shape[1:])
        W = rng.standard_normal(shape, dtype=dtype.type) * dtype.type(math.sqrt(2.0 / fan_in))
        b = np.zeros(shape[1] if kind == "Affine" else shape[0], dtype)
        return Affine(W, b) if kind == "Affine" else Convolution(W, b, spec["stride"], spec["pad"])
    if kind == "Pooling":
        return Pooling(spec["pool_h"], spec["pool_w"], spec["stride"], spec["pad"])
    if kind == "Dropout":
        return Dropout(spec["dropout_ratio"])
    if kind == "BatchNormalization":
        gamma, beta = np.ones(spec["features"], dtype), np.zeros(spec["features"], dtype)
        return BatchNormalization(gamma, beta, spec["momentum"], eps=spec["eps"])
    raise ArgumentError(f"Sequential.from_config: unknown layer {kind!r}")
