"""The book's networks, built from its layers, and ``Sequential`` for a learner's own.

``MultiLayerNet`` is ``(Affine → activation) × hidden layers → Affine → SoftmaxWithLoss``;
``TwoLayerNet`` is the one-hidden-layer ReLU case with the book's 0.01 initial scale.
Chapter 6's ``MultiLayerNetExtend`` adds batch normalisation and dropout to it, chapter
7's ``SimpleConvNet`` is ``Conv → ReLU → Pool → Affine → ReLU → Affine`` and chapter 8's
``DeepConvNet`` three stages of ``Conv → ReLU → Conv → ReLU → Pool`` and two Affine
layers with dropout. ``params`` holds the very arrays the layers use, so an optimiser that
updates them in place trains the network. Every network computes in float64 unless told
otherwise, as the book does.

Shapes: ``x`` is (N, input_size) or any (N, ...) with input_size values per sample, or
images (N, C, H, W) for the convolutional networks; ``t`` is (N,) integer labels or
(N, output_size) one-hot rows.

Two ways to the same gradients: ``loss_and_gradient_by_layers`` walks the layers
backwards, as the book's ``gradient`` does; ``loss_and_gradient`` and ``gradient``, the
training step, run the engine (:mod:`chainrule.engine`), which computes the same numbers
in buffers reused from step to step (the tests hold the two equal), and return copies
that stay valid. ``predict_fast``, what evaluation during training runs, is the engine's
forward. Everything else (``predict``, ``loss``, ``accuracy``, ``record``,
``numerical_gradient``) runs the layers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from chainrule.checkpoint import check_params_match, save_checkpoint
from chainrule.engine import Step, layer_list, parameter_names
from chainrule.errors import ArgumentError, ShapeError
from chainrule.gradcheck import numerical_gradient
from chainrule.graph import Graph, Value
from chainrule.init import init_std, normal_weight
from chainrule.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)
from chainrule.losses import SoftmaxWithLoss, class_indices
from chainrule.safepickle import read_params
from chainrule.util import conv_output_size
from chainrule.validation import check_flag, check_real, node_name

__all__ = [
    "ACTIVATIONS",
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Sequential",
    "SimpleConvNet",
    "TwoLayerNet",
    "network_from_config",
]

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _network_dtype(dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ArgumentError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _DTYPES:
        raise ArgumentError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class _LayerNetwork:
    """What every network shares: its ``layers`` (a dict by name, or a list) ending in
    ``last_layer``; ``params``, the layers' own arrays by the book's names; ``dtype``.

    Subclasses build those three and say how they are configured; the methods here walk
    the layers, or run the engine's :class:`~chainrule.engine.Step`.
    """

    weight_decay_lambda = 0.0
    layers: Any
    last_layer: Any
    params: dict[str, np.ndarray]
    dtype: np.dtype
    _fast_step: Step | None = None
    _masks_drawn_from: list[dict[str, Any]] = []  # noqa: RUF012 (replaced, never mutated)

    @property
    def lastLayer(self) -> Any:
        """``last_layer`` by the book's chapter 5 name."""
        return self.last_layer

    def _as_input(self, x: Any) -> np.ndarray:
        # Compute in the network's dtype: float64 data meeting float32 weights would
        # silently run the whole network in float64, at half the speed.
        x = np.asarray(x)
        layers = layer_list(self.layers)
        check_real(node_name(layers[0]) if layers else type(self).__name__, "input", x)
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    def _mask_generators(self) -> list[np.random.Generator]:
        """The generators the Dropout layers draw from (one, unless layers were replaced)."""
        layers = layer_list(self.layers)
        return list({id(x.rng): x.rng for x in layers if isinstance(x, Dropout)}.values())

    def predict(self, x: Any, train_flg: bool = False) -> np.ndarray:
        """Scores (logits) before softmax, (N, output_size); ``train_flg=True`` runs
        dropout and batch normalisation as in training."""
        check_flag(type(self).__name__, "train_flg", train_flg)
        if train_flg:
            self._masks_drawn_from = [g.bit_generator.state for g in self._mask_generators()]
        x = self._as_input(x)
        for layer in layer_list(self.layers):
            if isinstance(layer, (BatchNormalization, Dropout)):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def predict_fast(self, x: Any) -> np.ndarray:
        """:meth:`predict`'s scores by the engine's forward (the tests hold the two equal)
        where it applies, else by the layers: what evaluation during training runs."""
        scores = self.fast_step.scores(x)
        return self.predict(x) if scores is None else scores

    def weight_decay_loss(self) -> float:
        """The L2 penalty ``λ/2 · Σ‖W‖²`` included in the loss (0 without weight decay)."""
        if not self.weight_decay_lambda:
            return 0.0
        squares = sum(float(np.vdot(W, W)) for key, W in self.params.items() if key[0] == "W")
        return 0.5 * self.weight_decay_lambda * squares

    def _training_loss(self, x: Any, t: Any) -> Any:
        return self.last_layer.forward(self.predict(x, True), t) + self.weight_decay_loss()

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of the training loss by backpropagation, with the keys of ``params``;
        new arrays, as the book's."""
        return self.loss_and_gradient(x, t)[1]

    def loss_and_gradient(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The training loss and the gradients of ``dout · loss`` from one forward and one
        backward pass, by the engine (the numbers of :meth:`loss_and_gradient_by_layers`);
        the arrays are new on every call."""
        self._masks_drawn_from = [g.bit_generator.state for g in self._mask_generators()]
        loss, grads = self.fast_step.loss_and_gradient(x, t, dout=dout)
        return loss, {key: np.array(grad) for key, grad in grads.items()}

    @property
    def fast_step(self) -> Step:
        """The engine's training step for this network, made on first use."""
        if self._fast_step is None:
            self._fast_step = Step(self)
        return self._fast_step

    def __getstate__(self) -> dict[str, Any]:
        # The step (buffers, a thread tuner holding library handles) is remade on first
        # use: a copy of the network (copy.deepcopy) starts without it.
        return {**self.__dict__, "_fast_step": None}

    def loss_and_gradient_by_layers(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The training loss, and the gradients of ``dout · loss`` by walking the layers
        backwards, as the book's ``gradient`` does; the arrays are new on every call.

        ``dout`` is the gradient fed into the loss node, as in chapter 5 (1 by default).
        """
        loss = self._training_loss(x, t)
        grad = self.last_layer.backward(dout)
        for layer in reversed(layer_list(self.layers)):
            grad = layer.backward(grad)
        decay = dout * self.weight_decay_lambda
        grads = {}
        for key, layer, attribute in parameter_names(layer_list(self.layers)):
            grads[key] = getattr(layer, "d" + attribute)
            if decay and key[0] == "W":
                grads[key] = grads[key] + decay * getattr(layer, attribute)
        return loss, grads

    def numerical_gradient(self, x: Any, t: Any, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of the training loss by central differences (slow; for checking):
        the same dropout masks at every evaluation, those of the last training forward
        (that of the last ``gradient``; the book's draws new ones each time, so its check
        fails with dropout on); the running statistics are left as they were."""
        generators = self._mask_generators()
        states = self._masks_drawn_from or [g.bit_generator.state for g in generators]
        layers = layer_list(self.layers)
        norms = [layer for layer in layers if isinstance(layer, BatchNormalization)]
        running = [(norm.running_mean, norm.running_var) for norm in norms]

        def training_loss() -> Any:
            for generator, state in zip(generators, states):
                generator.bit_generator.state = state  # the same masks every time
            return self._training_loss(x, t)

        grads = {key: numerical_gradient(training_loss, p, h) for key, p in self.params.items()}
        for norm, (mean, var) in zip(norms, running):
            norm.running_mean, norm.running_var = mean, var
        return grads

    def record(self, x: Any, t: Any) -> tuple[Graph, Value]:
        """Run the forward pass as a recorded :class:`Graph`; return it and the loss value.

        The graph's nodes are this network's own layers (one node per layer), so after
        ``graph.backward(loss)`` each layer holds its parameter gradients (``dW``, ``db``).
        Weight decay is not part of the recorded graph.
        """
        graph = Graph()
        signal = graph.input(self._as_input(x), "x")
        for name, layer in _named_layers(self.layers):
            signal = graph.apply(layer, signal, name=name)
        loss = graph.apply(self.last_layer, signal, graph.input(t, "t"), name="SoftmaxWithLoss")
        return graph, loss


def _named_layers(layers: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` in order: a dict's keys, else each layer's name or class."""
    if hasattr(layers, "items"):
        return list(layers.items())
    return [(node_name(layer), layer) for layer in layers]


class MultiLayerNet(_LayerNetwork):
    """A fully connected network trained by backpropagation.

    Args:
        input_size: values per input sample (784 for MNIST).
        hidden_size_list: the width of each hidden layer, e.g. ``[100, 100]``.
        output_size: number of classes.
        activation: ``"relu"`` or ``"sigmoid"``.
        weight_init_std: a number, or ``"relu"``/``"he"``, ``"sigmoid"``/``"xavier"``.
        weight_decay_lambda: L2 strength λ; adds ``λ/2 · Σ‖W‖²`` to the loss, ``λW`` to dW.
        dtype: float64 (default, as the book computes) or float32 (faster).
        seed: seed for the initial weights; the same seed gives the same network.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int] | tuple[int, ...],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0.0,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
    ) -> None:
        sizes = [
            _positive_int("input_size", input_size),
            *(_positive_int("hidden size", h) for h in hidden_size_list),
            _positive_int("output_size", output_size),
        ]
        if activation not in ACTIVATIONS:
            raise ArgumentError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        self.dtype = _network_dtype(dtype)
        if not (np.isfinite(weight_decay_lambda) and weight_decay_lambda >= 0):
            raise ArgumentError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda!r}")
        self.sizes = sizes
        self.activation = activation
        self.weight_init_std = weight_init_std
        self.weight_decay_lambda = float(weight_decay_lambda)
        self.seed = seed

        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        self.layers: dict[str, Any] = {}
        num_affine = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
            W = normal_weight(rng, fan_in, fan_out, weight_init_std, self.dtype)
            b = np.zeros(fan_out, dtype=self.dtype)
            self.params[f"W{i}"], self.params[f"b{i}"] = W, b
            self.layers[f"Affine{i}"] = Affine(W, b, name=f"Affine{i}")
            if i < num_affine:
                act = ACTIVATIONS[activation]
                self.layers[f"{act.__name__}{i}"] = act()
        self.last_layer = SoftmaxWithLoss()

    @property
    def input_size(self) -> int:
        return self.sizes[0]

    @property
    def hidden_size_list(self) -> list[int]:
        return self.sizes[1:-1]

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    @property
    def widest_layer(self) -> int:
        """Values per sample of the widest layer's output (bounds evaluation's chunks)."""
        return max(self.sizes[1:])

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy over the batch, plus the weight-decay penalty."""
        return self.last_layer.forward(self.predict(x), t) + self.weight_decay_loss()

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of samples whose highest score is the label; ``t`` integer or one-hot."""
        t = np.asarray(t)
        scores = self.predict(x)
        labels, predicted = class_indices(t, scores.shape[-1]), scores.argmax(axis=1)
        if labels.shape != predicted.shape:
            raise ShapeError(
                f"accuracy: labels of shape {t.shape} do not match {len(predicted)} samples"
            )
        return float(np.mean(predicted == labels))

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (JSON-serialisable)."""
        return {
            "network": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size_list": self.hidden_size_list,
            "output_size": self.output_size,
            "activation": self.activation,
            "weight_decay_lambda": self.weight_decay_lambda,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultiLayerNet:
        """Build a network (with fresh weights) from :meth:`config`'s output: a
        TwoLayerNet or MultiLayerNetExtend for theirs, else a MultiLayerNet."""
        if config.get("network") == "MultiLayerNetExtend":
            return MultiLayerNetExtend(
                config["input_size"],
                config["hidden_size_list"],
                config["output_size"],
                activation=config.get("activation", "relu"),
                weight_decay_lambda=config.get("weight_decay_lambda", 0.0),
                use_dropout=config.get("use_dropout", False),
                dropout_ration=config.get("dropout_ration", 0.5),
                use_batchnorm=config.get("use_batchnorm", False),
                dtype=config.get("dtype", "float64"),
            )
        if config.get("network") == "TwoLayerNet":
            return TwoLayerNet(
                config["input_size"],
                config["hidden_size_list"][0],
                config["output_size"],
                dtype=config.get("dtype", "float32"),
            )
        return MultiLayerNet(
            config["input_size"],
            config["hidden_size_list"],
            config["output_size"],
            activation=config.get("activation", "relu"),
            weight_decay_lambda=config.get("weight_decay_lambda", 0.0),
            dtype=config.get("dtype", "float32"),
        )

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy ``params`` into this network's arrays in place (the layers keep seeing them)."""
        problems = [f"missing {key}" for key in self.params if key not in params]
        problems += [f"unexpected {key}" for key in params if key not in self.params]
        problems += [
            f"{key}: expected shape {self.params[key].shape}, got {np.shape(params[key])}"
            for key in self.params
            if key in params and np.shape(params[key]) != self.params[key].shape
        ]
        if problems:
            raise ShapeError("parameters do not match the network: " + "; ".join(problems))
        for key, param in self.params.items():
            param[...] = params[key]

    def __repr__(self) -> str:
        shape = "-".join(map(str, self.sizes))
        return f"{type(self).__name__}({shape}, {self.activation}, {self.dtype.name})"


class TwoLayerNet(MultiLayerNet):
    """The book's two-layer network: Affine → ReLU → Affine → SoftmaxWithLoss.

    ``params`` are ``W1`` (input, hidden), ``b1`` (hidden,), ``W2`` (hidden, output),
    ``b2`` (output,); initial weights are ``weight_init_std`` times standard normals.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float | str = 0.01,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            input_size,
            [hidden_size],
            output_size,
            activation="relu",
            weight_init_std=weight_init_std,
            dtype=dtype,
            seed=seed,
        )


class MultiLayerNetExtend(MultiLayerNet):
    """The book's ``MultiLayerNetExtend`` (chapter 6): a MultiLayerNet whose hidden layers
    are ``Affine → [BatchNormalization] → activation → [Dropout]``, batch normalisation
    with ``use_batchnorm``, dropout with ``use_dropout`` at ``dropout_ration`` (sic: the
    book's name). Then ``Affine → SoftmaxWithLoss``.

    ``params`` holds ``W1, b1, …`` and, with batch normalisation, ``gamma1, beta1, …``
    ((hidden,), ones and zeros), and ``gradient`` returns all of them, as the book's.
    ``predict(x, train_flg=False)`` and ``loss(x, t, train_flg=False)`` run inference by
    default (no dropout; batch normalisation by its running statistics); ``gradient``
    differentiates a training forward (``train_flg=True``), as the book's, and so does
    ``numerical_gradient``, which draws, at every loss it evaluates, the dropout masks of
    the last training forward (that of the last ``gradient``; the book's draws new ones
    each time, so its check fails with dropout on) and leaves the running statistics as
    it found them (the book's moves them at every evaluation).

    Where it differs from MultiLayerNet: ``seed`` draws the weights and, from a stream
    of its own, the dropout masks; without it both are random. The running statistics
    are not parameters: ``load_params`` and checkpoints carry ``params`` only.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int] | tuple[int, ...],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            dtype=dtype,
            seed=seed,
        )
        self.use_dropout, self.use_batchnorm = bool(use_dropout), bool(use_batchnorm)
        self.dropout_ration = dropout_ration
        masks = np.random.default_rng(None if seed is None else [seed, 1])  # for every Dropout
        plain, self.layers = self.layers, {}
        for i, width in enumerate(self.hidden_size_list, start=1):
            self.layers[f"Affine{i}"] = plain[f"Affine{i}"]
            if self.use_batchnorm:
                gamma, beta = np.ones(width, self.dtype), np.zeros(width, self.dtype)
                self.params[f"gamma{i}"], self.params[f"beta{i}"] = gamma, beta
                self.layers[f"BatchNorm{i}"] = BatchNormalization(gamma, beta, name=f"BatchNorm{i}")
            activation_name = f"{ACTIVATIONS[activation].__name__}{i}"
            self.layers[activation_name] = plain[activation_name]
            if self.use_dropout:
                self.layers[f"Dropout{i}"] = Dropout(dropout_ration, seed=masks, name=f"Dropout{i}")
        last = len(self.sizes) - 1
        self.layers[f"Affine{last}"] = plain[f"Affine{last}"]

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """Mean cross-entropy over the batch, plus the weight-decay penalty."""
        return self.last_layer.forward(self.predict(x, train_flg), t) + self.weight_decay_loss()

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "use_dropout": self.use_dropout,
            "dropout_ration": self.dropout_ration,
            "use_batchnorm": self.use_batchnorm,
        }


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
        dtype: float64 by default, as the book computes (its gradient check,
            ch07/gradient_check.py, needs it); float32 trains faster.
        seed: seed for the initial weights; the same seed gives the same network.

    ``params`` are ``W1`` (filter_num, C, FH, FW), ``b1``, ``W2`` (filter_num·h·w after
    pooling, hidden_size), ``b2``, ``W3`` (hidden_size, output_size), ``b3``. Images are
    (N, C, H, W); labels (N,) integers, (N, 1) or one-hot rows.

    Differs from the book's: the size after pooling is computed for height and width
    apart, rounding down (the book's assumes square images and an even convolution
    output, and builds a W2 that does not fit otherwise); ``accuracy`` counts every sample
    (the book's leaves out the last ``len(x) % batch_size``); and ``save_params`` and
    ``load_params`` write and read chainrule's checkpoint format, an ``.npz`` of plain
    arrays read without pickle, at the path given: the book's default name ``params.pkl``
    is kept, but the file is no pickle. ``load_params`` also reads the book's own weight
    pickles, through :func:`chainrule.safepickle.read_params`, which runs nothing they
    name; it copies into the network's own arrays, so its layers and an optimiser keep
    them.
    """

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
        unknown = sorted(set(conv_param) - set(_BOOK_CONV_PARAM))
        if unknown:
            raise ArgumentError(
                f"conv_param: unknown {unknown}; it takes {', '.join(_BOOK_CONV_PARAM)}"
            )
        conv_param = {**_BOOK_CONV_PARAM, **conv_param}
        if len(input_dim) != 3:
            raise ArgumentError(f"input_dim must be one image's (C, H, W), got {input_dim!r}")
        channels, height, width = (_positive_int("input_dim", d) for d in input_dim)
        filters = _positive_int("filter_num", conv_param["filter_num"])
        size = _positive_int("filter_size", conv_param["filter_size"])
        hidden_size = _positive_int("hidden_size", hidden_size)
        output_size = _positive_int("output_size", output_size)
        self.dtype = _network_dtype(dtype)

        rng = np.random.default_rng(seed)
        shape = (filters, channels, size, size)
        W1 = rng.standard_normal(shape, dtype=self.dtype.type)
        W1 *= init_std(weight_init_std, channels * size * size)
        b1 = np.zeros(filters, self.dtype)
        conv = Convolution(W1, b1, conv_param["stride"], conv_param["pad"], name="Conv1")
        conv_h = conv_output_size(height, size, conv.stride, conv.pad)
        conv_w = conv_output_size(width, size, conv.stride, conv.pad)
        if min(conv_h, conv_w) < 2:
            raise ShapeError(
                f"SimpleConvNet: {size}×{size} filters (pad {conv.pad}, stride {conv.stride}) "
                f"on {height}×{width} images leave {conv_h}×{conv_w}, too small for its 2×2 "
                "pooling"
            )
        pooled = filters * (conv_h // 2) * (conv_w // 2)
        self.params = {
            "W1": W1,
            "b1": b1,
            "W2": normal_weight(rng, pooled, hidden_size, weight_init_std, self.dtype),
            "b2": np.zeros(hidden_size, self.dtype),
            "W3": normal_weight(rng, hidden_size, output_size, weight_init_std, self.dtype),
            "b3": np.zeros(output_size, self.dtype),
        }
        self.layers = {
            "Conv1": conv,
            "Relu1": Relu(),
            "Pool1": Pooling(2, 2, stride=2, name="Pool1"),
            "Affine1": Affine(self.params["W2"], self.params["b2"], name="Affine1"),
            "Relu2": Relu(),
            "Affine2": Affine(self.params["W3"], self.params["b3"], name="Affine2"),
        }
        self.last_layer = SoftmaxWithLoss()
        self.input_dim, self.conv_param = (channels, height, width), conv_param
        self.hidden_size, self.output_size = hidden_size, output_size
        # Values per sample of the largest array a forward makes: im2col's, or the
        # convolution's output (bounds evaluation's chunks)
        self.widest_layer = max(channels * size * size, filters) * conv_h * conv_w

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy over the batch."""
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of images whose highest score is the label, ``batch_size`` at a time."""
        return _accuracy_in_batches(self, x, t, batch_size)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (JSON-serialisable)."""
        return {
            "network": type(self).__name__,
            "input_dim": list(self.input_dim),
            "conv_param": dict(self.conv_param),
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SimpleConvNet:
        """Build a network (with fresh weights) from :meth:`config`'s output."""
        return cls(
            tuple(config["input_dim"]),
            dict(config["conv_param"]),
            config["hidden_size"],
            config["output_size"],
            dtype=config.get("dtype", "float64"),
        )

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> Path:
        """Write ``params`` to ``file_name`` as a chainrule checkpoint (an ``.npz``, not a
        pickle, whatever the name), atomically; return the path."""
        return save_checkpoint(file_name, self.params, meta=self.config())

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Read the parameters :meth:`save_params` wrote into this network's arrays.

        The file may also be the book's pickle of a dict of arrays, read without running
        anything (UnsafePickleError for one that names other code). Raises
        CheckpointError for a file that is neither, or whose parameters do not fit this
        network (each mismatch listed); nothing changes.
        """
        _load_params_into(self.params, file_name)

    def __repr__(self) -> str:
        c = self.conv_param
        return (
            f"SimpleConvNet({'×'.join(map(str, self.input_dim))}, {c['filter_num']} filters "
            f"{c['filter_size']}×{c['filter_size']}, {self.hidden_size}, {self.output_size}, "
            f"{self.dtype.name})"
        )


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
        conv_params = [
            _conv_param(f"conv_param_{i}", param, book)
            for i, (param, book) in enumerate(zip(given, _BOOK_DEEP_CONV_PARAMS), start=1)
        ]
        if len(input_dim) != 3:
            raise ArgumentError(f"input_dim must be one image's (C, H, W), got {input_dim!r}")
        channels, height, width = (_positive_int("input_dim", d) for d in input_dim)
        self.dtype = _network_dtype(dtype)
        self.input_dim, self.conv_params = (channels, height, width), conv_params
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.output_size = _positive_int("output_size", output_size)

        rng = np.random.default_rng(seed)
        masks = np.random.default_rng(None if seed is None else [seed, 1])
        self.params: dict[str, np.ndarray] = {}
        layers: list[Any] = []
        # Values per sample of the largest array the engine's forward makes, a
        # convolution's output (its im2col goes a few images at a time): bounds
        # evaluation's chunks
        widest = 0
        for i, param in enumerate(conv_params, start=1):
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
        sizes = (channels * height * width, self.hidden_size, self.output_size)
        for i, (fan_in, fan_out) in enumerate(pairwise(sizes), start=7):
            self.params[f"W{i}"] = normal_weight(rng, fan_in, fan_out, "he", self.dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, self.dtype)
        self.layers = _name_layers(
            [
                *layers,
                Affine(self.params["W7"], self.params["b7"], name="Affine1"),
                Relu(),
                Dropout(0.5, seed=masks, name="Dropout1"),
                Affine(self.params["W8"], self.params["b8"], name="Affine2"),
                Dropout(0.5, seed=masks, name="Dropout2"),
            ]
        )
        self.last_layer = SoftmaxWithLoss()
        self.widest_layer = widest

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy of a training forward (dropout on), as the book's."""
        return self._training_loss(x, t)

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of images whose highest score is the label, ``batch_size`` at a time."""
        return _accuracy_in_batches(self, x, t, batch_size)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (JSON-serialisable)."""
        convs = {f"conv_param_{i}": dict(p) for i, p in enumerate(self.conv_params, start=1)}
        return {
            "network": type(self).__name__,
            "input_dim": list(self.input_dim),
            **convs,
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepConvNet:
        """Build a network (with fresh weights) from :meth:`config`'s output."""
        convs = {f"conv_param_{i}": dict(config[f"conv_param_{i}"]) for i in range(1, 7)}
        return cls(
            tuple(config["input_dim"]),
            **convs,
            hidden_size=config["hidden_size"],
            output_size=config["output_size"],
            dtype=config.get("dtype", "float64"),
        )

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> Path:
        """Write ``params`` to ``file_name`` as a chainrule checkpoint (an ``.npz``, not a
        pickle, whatever the name), atomically; return the path."""
        return save_checkpoint(file_name, self.params, meta=self.config())

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Read the parameters :meth:`save_params` wrote into this network's arrays
        (CheckpointError, and nothing changes, for a file that does not fit)."""
        _load_params_into(self.params, file_name)

    def __repr__(self) -> str:
        filters = "-".join(str(p["filter_num"]) for p in self.conv_params)
        shape = "×".join(map(str, self.input_dim))
        return (
            f"DeepConvNet({shape}, filters {filters}, {self.hidden_size}, "
            f"{self.output_size}, {self.dtype.name})"
        )


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
    the layers (with fresh He-initialised weights) where they are all chainrule's.
    """

    def __init__(self, layers: Sequence[Any], last_layer: Any = None) -> None:
        layers = list(layers)
        if not layers:
            raise ArgumentError("Sequential: give at least one layer")
        self.layers = _name_layers(layers)
        self.last_layer = SoftmaxWithLoss() if last_layer is None else last_layer
        self.params = {key: getattr(layer, attr) for key, layer, attr in parameter_names(layers)}
        dtypes = {param.dtype for param in self.params.values()}
        if len(dtypes) > 1:
            raise ArgumentError(
                f"Sequential: the layers' parameters must share one dtype, got "
                f"{', '.join(sorted(d.name for d in dtypes))}"
            )
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float64)

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """Mean cross-entropy over the batch (a training forward with ``train_flg``)."""
        return self.last_layer.forward(self.predict(x, train_flg), t)

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of samples whose highest score is the label, ``batch_size`` at a time."""
        return _accuracy_in_batches(self, x, t, batch_size)

    def config(self) -> dict[str, Any]:
        """The layers' kinds and sizes, JSON-serialisable: what :meth:`from_config`
        rebuilds (with fresh weights). A layer of a class of its own is an ArgumentError."""
        return {
            "network": "Sequential",
            "layers": [_layer_config(layer) for layer in self.layers.values()],
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = None) -> Sequential:
        """A Sequential of :meth:`config`'s layers: He-initialised weights (standard
        normals times ``sqrt(2 / fan_in)``, drawn with ``seed``), zero biases, batch
        normalisation's γ = 1 and β = 0."""
        rng, dtype = np.random.default_rng(seed), _network_dtype(config.get("dtype", "float64"))
        return cls([_layer_of(spec, rng, dtype) for spec in config["layers"]])

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> Path:
        """Write ``params`` to ``file_name`` as a chainrule checkpoint, atomically (with
        the config, where every layer is one of chainrule's)."""
        try:
            meta = self.config()
        except ArgumentError:
            meta = {"network": "Sequential"}
        return save_checkpoint(file_name, self.params, meta=meta)

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Read the parameters :meth:`save_params` wrote into the layers' arrays
        (CheckpointError, and nothing changes, for a file that does not fit)."""
        _load_params_into(self.params, file_name)

    def __repr__(self) -> str:
        return f"Sequential({' → '.join(self.layers)}, {self.dtype.name})"


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


_SHORT_NAMES = {"Convolution": "Conv", "Pooling": "Pool", "BatchNormalization": "BatchNorm"}


def _name_layers(layers: list[Any]) -> dict[str, Any]:
    """Layers by name, each kind counted from 1: Conv1, Relu1, Conv2, Relu2, Pool1, …"""
    counts: dict[str, int] = {}
    named = {}
    for layer in layers:
        kind = type(layer).__name__
        kind = _SHORT_NAMES.get(kind, kind)
        counts[kind] = counts.get(kind, 0) + 1
        named[f"{kind}{counts[kind]}"] = layer
    return named


def _conv_param(name: str, given: Mapping[str, int], book: Mapping[str, int]) -> dict[str, int]:
    """A convolution's parameters, the book's where ``given`` leaves one out."""
    unknown = sorted(set(given) - set(book))
    if unknown:
        raise ArgumentError(f"{name}: unknown {unknown}; it takes {', '.join(book)}")
    param = {**book, **given}
    for key in ("filter_num", "filter_size", "stride"):
        _positive_int(f"{name}[{key!r}]", param[key])
    if (
        isinstance(param["pad"], bool)
        or not isinstance(param["pad"], (int, np.integer))
        or param["pad"] < 0
    ):
        raise ArgumentError(f"{name}['pad'] must be an integer >= 0, got {param['pad']!r}")
    return {key: int(value) for key, value in param.items()}


def _fitting(layer: str, size: int) -> int:
    if size < 1:
        raise ShapeError(f"DeepConvNet: the images are too small for {layer}")
    return size


def _accuracy_in_batches(network: Any, x: Any, t: Any, batch_size: int) -> float:
    """Fraction of samples whose highest score is the label, ``batch_size`` at a time."""
    t = np.asarray(t)
    if len(x) != len(t) or len(x) == 0:
        raise ShapeError(f"accuracy: {len(x)} images and {len(t)} labels")
    correct = 0
    for start in range(0, len(x), _positive_int("batch_size", batch_size)):
        scores = network.predict(x[start : start + batch_size])
        labels = class_indices(t[start : start + batch_size], scores.shape[1])
        correct += int(np.count_nonzero(scores.argmax(axis=1) == labels))
    return correct / len(x)


def _load_params_into(params: dict[str, np.ndarray], file_name: Any) -> None:
    """Copy a checkpoint's (or the book's pickle's) parameters into ``params``' own
    arrays, all or none."""
    saved = read_params(file_name)
    saved = {k: v.astype(params[k].dtype) if k in params else v for k, v in saved.items()}
    check_params_match(params, saved, file_name)
    for key, param in params.items():
        param[...] = saved[key]


def network_from_config(config: dict[str, Any]) -> _LayerNetwork:
    """The network (with fresh weights) a ``config()`` describes, whichever class wrote it."""
    if config.get("network") == "SimpleConvNet":
        return SimpleConvNet.from_config(config)
    if config.get("network") == "DeepConvNet":
        return DeepConvNet.from_config(config)
    if config.get("network") == "Sequential":
        return Sequential.from_config(config)
    return MultiLayerNet.from_config(config)
