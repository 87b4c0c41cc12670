"""The fully connected networks: ``MultiLayerNet``, chapter 5's ``TwoLayerNet`` and
chapter 6's ``MultiLayerNetExtend`` with batch normalisation and dropout."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError
from chainrule.init import normal_weight
from chainrule.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid
from chainrule.losses import SoftmaxWithLoss
from chainrule.networks.arguments import _network_dtype, _positive_int
from chainrule.networks.base import _LayerNetwork

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


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

    def _config_fields(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size_list": self.hidden_size_list,
            "output_size": self.output_size,
            "activation": self.activation,
            "weight_decay_lambda": self.weight_decay_lambda,
            "dtype": self.dtype.name,
        }

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        # float32 where a config (an early checkpoint's) leaves the dtype out
        return {
            "input_size": config["input_size"],
            "hidden_size_list": config["hidden_size_list"],
            "output_size": config["output_size"],
            "activation": config.get("activation", "relu"),
            "weight_decay_lambda": config.get("weight_decay_lambda", 0.0),
            "dtype": config.get("dtype", "float32"),
            "seed": seed,
        }

    def _summary(self) -> list[str]:
        return ["-".join(map(str, self.sizes)), self.activation]


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

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        return {
            "input_size": config["input_size"],
            "hidden_size": config["hidden_size_list"][0],
            "output_size": config["output_size"],
            "dtype": config.get("dtype", "float32"),
            "seed": seed,
        }


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

    def _config_fields(self) -> dict[str, Any]:
        return {
            **super()._config_fields(),
            "use_dropout": self.use_dropout,
            "dropout_ration": self.dropout_ration,
            "use_batchnorm": self.use_batchnorm,
        }

    @classmethod
    def _config_arguments(cls, config: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        return {
            **super()._config_arguments(config, seed),
            "use_dropout": config.get("use_dropout", False),
            "dropout_ration": config.get("dropout_ration", 0.5),
            "use_batchnorm": config.get("use_batchnorm", False),
            "dtype": config.get("dtype", "float64"),
        }
