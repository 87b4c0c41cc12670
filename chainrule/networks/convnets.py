"""The convolutional networks: chapter 7's ``SimpleConvNet`` and chapter 8's
``DeepConvNet``, their sizes after each layer computed for height and width apart."""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import numpy as np

from chainrule.errors import ShapeError
from chainrule.init import init_std, normal_weight
from chainrule.layers import Affine, Convolution, Dropout, Pooling, Relu
from chainrule.losses import SoftmaxWithLoss
from chainrule.networks.arguments import (
    _conv_param,
    _image_shape,
    _known_keys,
    _network_dtype,
    _positive_int,
)
from chainrule.networks.base import _LayerNetwork, _name_layers
from chainrule.util import conv_output_size

_BOOK_CONV_PARAM = MappingProxyType({"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1})


class SimpleConvNet(_LayerNetwork):
    """The book's convolutional network (chapter 7): ``Conv1 → Relu1 → Pool1 → Affine1 →
    Relu2 → Affine2 → SoftmaxWithLoss``, the pooling 2×2 with stride 2.

    Args:
        input_dim: one image's (C, H, W): (1, 28, 28) for ``load_mnist(flatten=False)``.
        conv_param: ``filter_num``, ``filter_size`` (square filters), ``pad`` and
            ``stride``; a key left out takes the book's value (30, 5, 0, 1).
        hidden_size: the width of the hidden Affine layer.
        output_size: the number of classes.
        weight_init_std: the initial weights' standard deviation (the book's 0.01), or a
            name as MultiLayerNet takes (``"he"``: each layer by its fan-in, C·FH·FW for
            the filters).
        dtype: float64 by default, as the book computes; float32 trains faster.
        seed: seed for the initial weights; the same seed gives the same network.

    ``params`` are ``W1`` (filter_num, C, FH, FW), ``b1``, ``W2`` (filter_num·h·w after
    pooling, hidden_size), ``b2``, ``W3`` (hidden_size, output_size), ``b3``. Images are
    (N, C, H, W); labels (N,) integers, (N, 1) or one-hot rows.

    Differs from the book's (see docs/differences.md): sizes after pooling are computed
    for height and width apart; ``accuracy`` counts every image; ``save_params`` writes
    chainrule's pickle-free ``.npz`` whatever the name, and ``load_params`` copies into the
    network's own arrays, reading the book's pickles too, safely.
    """

    accuracy_batch_size = 100

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: Mapping[str, int] = _BOOK_CONV_PARAM,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float | str = 0.01,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
    ) -> None:
        self.conv_param = _known_keys("conv_param", conv_param, _BOOK_CONV_PARAM)
        self.input_dim = _image_shape(input_dim)
        _positive_int("filter_num", self.conv_param["filter_num"])
        _positive_int("filter_size", self.conv_param["filter_size"])
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.output_size = _positive_int("output_size", output_size)
        self.dtype = _network_dtype(dtype)
        rng = np.random.default_rng(seed)
        conv = self._convolution(rng, weight_init_std)
        self._build_layers(conv, rng, weight_init_std)
        self.last_layer = SoftmaxWithLoss()

    def _convolution(self, rng: np.random.Generator, weight_init_std: float | str) -> Any:
        """Conv1, its filters W1 (filter_num, C, FH, FW) drawn by their fan-in C·FH·FW."""
        channels, filters = self.input_dim[0], int(self.conv_param["filter_num"])
        size = int(self.conv_param["filter_size"])
        W1 = rng.standard_normal((filters, channels, size, size), dtype=self.dtype.type)
        W1 *= init_std(weight_init_std, channels * size * size)
        b1 = np.zeros(filters, self.dtype)
        return Convolution(W1, b1, self.conv_param["stride"], self.conv_param["pad"], name="Conv1")

    def _build_layers(
        self, conv: Any, rng: np.random.Generator, weight_init_std: float | str
    ) -> None:
        """``params`` and ``layers``, Conv1 and the Affine layers after its pooling;
        ShapeError where the images leave too little for the 2×2 pooling."""
        (filters, channels, size, _), (_, height, width) = conv.W.shape, self.input_dim
        conv_h = conv_output_size(height, size, conv.stride, conv.pad)
        conv_w = conv_output_size(width, size, conv.stride, conv.pad)
        if min(conv_h, conv_w) < 2:
            raise ShapeError(
                f"SimpleConvNet: {size}×{size} filters (pad {conv.pad}, stride {conv.stride}) "
                f"on {height}×{width} images leave {conv_h}×{conv_w}, too small for its 2×2 "
                "pooling"
            )
        pooled, hidden = filters * (conv_h // 2) * (conv_w // 2), self.hidden_size
        self.params = {
            "W1": conv.W,
            "b1": conv.b,
            "W2": normal_weight(rng, pooled, hidden, weight_init_std, self.dtype),
            "b2": np.zeros(hidden, self.dtype),
            "W3": normal_weight(rng, hidden, self.output_size, weight_init_std, self.dtype),
            "b3": np.zeros(self.output_size, self.dtype),
        }
        self.layers = {
            "Conv1": conv,
            "Relu1": Relu(),
            "Pool1": Pooling(2, 2, stride=2, name="Pool1"),
            "Affine1": Affine(self.params["W2"], self.params["b2"], name="Affine1"),
            "Relu2": Relu(),
            "Affine2": Affine(self.params["W3"], self.params["b3"], name="Affine2"),
        }
        # Values per sample of the largest array a forward makes: im2col's, or the
        # convolution's output (bounds evaluation's chunks)
        self.widest_layer = max(channels * size * size, filters) * conv_h * conv_w

    def _config_fields(self) -> dict[str, Any]:
        return {
            "input_dim": list(self.input_dim),
            "conv_param": dict(self.conv_param),
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "dtype": self.dtype.name,
        }

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        return {
            "input_dim": tuple(config["input_dim"]),
            "conv_param": dict(config["conv_param"]),
            "hidden_size": config["hidden_size"],
            "output_size": config["output_size"],
            "dtype": config.get("dtype", "float64"),
            "seed": seed,
        }

    def _summary(self) -> list[str]:
        c = self.conv_param
        filters = f"{c['filter_num']} filters {c['filter_size']}×{c['filter_size']}"
        shape = "×".join(map(str, self.input_dim))
        return [shape, filters, str(self.hidden_size), str(self.output_size)]


_BOOK_DEEP_CONV_PARAMS = tuple(
    MappingProxyType({"filter_num": n, "filter_size": 3, "pad": pad, "stride": 1})
    for n, pad in ((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))
)


class DeepConvNet(_LayerNetwork):
    """The book's deep convolutional network (chapter 8), over 99% on MNIST: three stages
    of ``Conv → Relu → Conv → Relu → Pool`` (2×2 pooling, stride 2), then ``Affine →
    Relu → Dropout(0.5) → Affine → Dropout(0.5) → SoftmaxWithLoss``.

    Args:
        input_dim: one image's (C, H, W): (1, 28, 28) for ``load_mnist(flatten=False)``.
        conv_param_1 … conv_param_6: each convolution's ``filter_num``, ``filter_size``,
            ``pad`` and ``stride``; a key left out takes the book's value (16, 16, 32, 32,
            64, 64 filters of 3×3, pad 1 but 2 for the fourth, stride 1).
        hidden_size: the width of the hidden Affine layer.
        output_size: the number of classes.
        dtype: float64 by default, as the book computes; float32 trains faster.
        seed: seed for the initial weights and, from a stream of its own, the dropout
            masks; the same seed gives the same network.

    ``params`` are ``W1 … W6`` (the filters), ``W7`` (values after the last pooling,
    hidden_size), ``W8`` (hidden_size, output_size) and ``b1 … b8``, He-initialised as
    the book's: standard normals times ``sqrt(2 / fan_in)``, the fan-in of a filter
    being C·FH·FW and of an Affine its input width (the book writes the list out for
    its default sizes; it is computed here, the same numbers). ``layers`` are named
    ``Conv1 … Conv6``, ``Relu1 …``, ``Pool1 … Pool3``, ``Affine1``, ``Affine2``,
    ``Dropout1``, ``Dropout2`` (the book keeps them in a list). ``predict(x,
    train_flg=False)`` runs inference (dropout passes everything, times 0.5); ``loss``
    and ``gradient`` run a training forward, as the book's.

    Differs from the book's as SimpleConvNet does: sizes after each layer are computed,
    ``accuracy`` counts every image, and ``save_params``/``load_params`` use chainrule's
    checkpoint format (``load_params`` also reads the book's weight pickles, safely) and
    copy into the network's own arrays.
    """

    loss_trains = True
    accuracy_batch_size = 100

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[0],
        conv_param_2: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[1],
        conv_param_3: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[2],
        conv_param_4: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[3],
        conv_param_5: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[4],
        conv_param_6: Mapping[str, int] = _BOOK_DEEP_CONV_PARAMS[5],
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
    ) -> None:
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        self.conv_params = [
            _conv_param(f"conv_param_{i}", param, book)
            for i, (param, book) in enumerate(zip(given, _BOOK_DEEP_CONV_PARAMS), start=1)
        ]
        self.input_dim = _image_shape(input_dim)
        self.dtype = _network_dtype(dtype)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.output_size = _positive_int("output_size", output_size)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        convs, flat = self._conv_stages(rng)
        self.layers = _name_layers([*convs, *self._dense_layers(rng, flat, seed)])
        self.last_layer = SoftmaxWithLoss()

    def _conv_stages(self, rng: np.random.Generator) -> tuple[list[Any], int]:
        """The three ``Conv → Relu → Conv → Relu → Pool`` stages, their filters He-drawn
        into ``params``, and the values per image after the last pooling; sets
        ``widest_layer``."""
        channels, height, width = self.input_dim
        layers: list[Any] = []
        # Values per sample of the largest array the engine's forward makes, a
        # convolution's output (its im2col goes a few images at a time): bounds
        # evaluation's chunks
        widest = 0
        for i, param in enumerate(self.conv_params, start=1):
            size, filters = param["filter_size"], param["filter_num"]
            W = rng.standard_normal((filters, channels, size, size), dtype=self.dtype.type)
            W *= math.sqrt(2.0 / (channels * size * size))
            self.params[f"W{i}"], self.params[f"b{i}"] = W, np.zeros(filters, self.dtype)
            conv = Convolution(
                W, self.params[f"b{i}"], param["stride"], param["pad"], name=f"Conv{i}"
            )
            height = _fitting(f"Conv{i}", conv_output_size(height, size, conv.stride, conv.pad))
            width = _fitting(f"Conv{i}", conv_output_size(width, size, conv.stride, conv.pad))
            widest = max(widest, filters * height * width)
            layers += [conv, Relu()]
            channels = filters
            if i % 2 == 0:
                height = _fitting(f"Pool{i // 2}", conv_output_size(height, 2, 2))
                width = _fitting(f"Pool{i // 2}", conv_output_size(width, 2, 2))
                layers.append(Pooling(2, 2, stride=2, name=f"Pool{i // 2}"))
        self.widest_layer = widest
        return layers, channels * height * width

    def _dense_layers(self, rng: np.random.Generator, flat: int, seed: int | None) -> list[Any]:
        """``Affine → Relu → Dropout → Affine → Dropout`` after ``flat`` values per image,
        W7 and W8 He-drawn into ``params``; the masks from a stream of ``seed``'s own."""
        masks = np.random.default_rng(None if seed is None else [seed, 1])
        sizes = (flat, self.hidden_size, self.output_size)
        for i, (fan_in, fan_out) in enumerate(pairwise(sizes), start=7):
            self.params[f"W{i}"] = normal_weight(rng, fan_in, fan_out, "he", self.dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, self.dtype)
        return [
            Affine(self.params["W7"], self.params["b7"], name="Affine1"),
            Relu(),
            Dropout(0.5, seed=masks, name="Dropout1"),
            Affine(self.params["W8"], self.params["b8"], name="Affine2"),
            Dropout(0.5, seed=masks, name="Dropout2"),
        ]

    def _config_fields(self) -> dict[str, Any]:
        convs = {f"conv_param_{i}": dict(p) for i, p in enumerate(self.conv_params, start=1)}
        return {
            "input_dim": list(self.input_dim),
            **convs,
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "dtype": self.dtype.name,
        }

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        convs = {f"conv_param_{i}": dict(config[f"conv_param_{i}"]) for i in range(1, 7)}
        return {
            "input_dim": tuple(config["input_dim"]),
            **convs,
            "hidden_size": config["hidden_size"],
            "output_size": config["output_size"],
            "dtype": config.get("dtype", "float64"),
            "seed": seed,
        }

    def _summary(self) -> list[str]:
        filters = "-".join(str(p["filter_num"]) for p in self.conv_params)
        shape = "×".join(map(str, self.input_dim))
        return [shape, f"filters {filters}", str(self.hidden_size), str(self.output_size)]


def _fitting(layer: str, size: int) -> int:
    if size < 1:
        raise ShapeError(f"DeepConvNet: the images are too small for {layer}")
    return size
