"""The book's network classes as chainrule's, with the book's signatures and numbers.

Each subclasses chainrule's network of the same name, so it trains on chainrule's
training step, and differs from it where the book's results depend on it:

- computes in float64, as the book does;
- draws its initial weights from NumPy's global generator, ``scale * np.random.randn``
  per weight in the book's order, so ``np.random.seed(s)`` gives the book's network;
- ``loss`` returns the book's value (``1e-7`` inside the log); gradients are unchanged;
- dropout masks come from the global generator, and batch normalisation's running
  variance starts at 0, as the book's;
- ``save_params`` writes the book's file, a pickle of the dict of arrays, and
  ``load_params`` reads that (through :mod:`chainrule.safepickle`, which runs nothing
  the file names) or a chainrule checkpoint.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule import networks as _networks
from chainrule.book.functions import cross_entropy_error
from chainrule.book.globalrng import GLOBAL_GENERATOR
from chainrule.checkpoint import check_params_match
from chainrule.fileio import atomic_write
from chainrule.init import init_std
from chainrule.layers import BatchNormalization, Dropout
from chainrule.safepickle import read_params

__all__ = ["DeepConvNet", "MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "TwoLayerNet"]


def draw_book_weights(params: dict[str, np.ndarray], draws: Iterable[tuple[str, float]]) -> None:
    """Fill each ``params[key]`` in place with ``scale * np.random.randn(*shape)``, in the
    order given (the order the book's constructor draws them)."""
    for key, scale in draws:
        weight = params[key]
        weight[...] = scale * np.random.randn(*weight.shape)  # noqa: NPY002 (the book's)


def layer_scales(sizes: list[int], weight_init_std: float | str) -> list[tuple[str, float]]:
    """``(W1, scale), (W2, scale) …`` of a fully connected network of ``sizes``."""
    return [(f"W{i}", init_std(weight_init_std, fan_in)) for i, fan_in in enumerate(sizes[:-1], 1)]


def book_training_layers(network: Any) -> None:
    """Dropout from the global generator; batch norm's running variance from 0."""
    layers = network.layers.values() if isinstance(network.layers, dict) else network.layers
    for layer in layers:
        if isinstance(layer, Dropout):
            layer.rng = GLOBAL_GENERATOR
        elif isinstance(layer, BatchNormalization):
            layer.running_var = np.zeros(len(layer.gamma), network.dtype)


def save_book_params(params: dict[str, np.ndarray], file_name: str | os.PathLike[str]) -> None:
    """The book's ``save_params``: ``pickle.dump`` of the dict of arrays (atomically)."""
    with atomic_write(file_name) as handle:
        pickle.dump(dict(params), handle)


def load_book_params(params: dict[str, np.ndarray], file_name: str | os.PathLike[str]) -> None:
    """Copy the arrays of the book's pickle (or a chainrule checkpoint) into ``params``."""
    saved = read_params(file_name)
    saved = {k: v.astype(params[k].dtype) if k in params else v for k, v in saved.items()}
    check_params_match(params, saved, file_name)
    for key, param in params.items():
        param[...] = saved[key]


class MultiLayerNet(_networks.MultiLayerNet):
    """The book's ``MultiLayerNet`` (``common/multi_layer_net.py``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
    ) -> None:
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std,
            weight_decay_lambda, dtype=np.float64,
        )  # fmt: skip
        draw_book_weights(self.params, layer_scales(self.sizes, weight_init_std))

    def loss(self, x: Any, t: Any) -> Any:
        super().loss(x, t)  # the layers keep what backward needs
        return cross_entropy_error(self.last_layer.y, t) + self.weight_decay_loss()

    def _training_loss(self, x: Any, t: Any) -> Any:
        # the loss numerical_gradient and the layers' backward start from: the book's too
        super()._training_loss(x, t)
        return cross_entropy_error(self.last_layer.y, t) + self.weight_decay_loss()


class TwoLayerNet(MultiLayerNet):
    """The book's chapter 5 ``TwoLayerNet`` (``ch05/two_layer_net.py``):
    Affine → ReLU → Affine → SoftmaxWithLoss."""

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01
    ) -> None:
        super().__init__(input_size, [hidden_size], output_size, "relu", weight_init_std)

    @property
    def lastLayer(self) -> Any:
        return self.last_layer


class MultiLayerNetExtend(_networks.MultiLayerNetExtend):
    """The book's ``MultiLayerNetExtend`` (``common/multi_layer_net_extend.py``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
    ) -> None:
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std,
            weight_decay_lambda, use_dropout, dropout_ration, use_batchnorm, dtype=np.float64,
        )  # fmt: skip
        draw_book_weights(self.params, layer_scales(self.sizes, weight_init_std))
        book_training_layers(self)

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        super().loss(x, t, train_flg)
        return cross_entropy_error(self.last_layer.y, t) + self.weight_decay_loss()

    def _training_loss(self, x: Any, t: Any) -> Any:
        super()._training_loss(x, t)
        return cross_entropy_error(self.last_layer.y, t) + self.weight_decay_loss()


_BOOK_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet(_networks.SimpleConvNet):
    """The book's ``SimpleConvNet`` (``ch07/simple_convnet.py``)."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: dict[str, int] = _BOOK_CONV,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
    ) -> None:
        super().__init__(
            input_dim, conv_param, hidden_size, output_size, weight_init_std, dtype=np.float64
        )
        channels, size = input_dim[0], self.conv_param["filter_size"]
        fan_ins = (channels * size * size, len(self.params["W2"]), hidden_size)
        draws = [(f"W{i}", init_std(weight_init_std, n)) for i, n in enumerate(fan_ins, 1)]
        draw_book_weights(self.params, draws)

    def loss(self, x: Any, t: Any) -> Any:
        # The scores by the engine's forward pass (the book's Trainer takes a loss after
        # every step: through the layers it cost more than the step itself)
        self.last_layer.forward(self.predict_fast(x), t)
        return cross_entropy_error(self.last_layer.y, t)

    def _training_loss(self, x: Any, t: Any) -> Any:
        # through the layers: numerical_gradient's loss, and the layers' backward after it
        super()._training_loss(x, t)
        return cross_entropy_error(self.last_layer.y, t)

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Write ``params`` as the book does: a pickle of the dict of arrays."""
        save_book_params(self.params, file_name)

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Read the book's pickle (safely) or a chainrule checkpoint into ``params``."""
        load_book_params(self.params, file_name)


_BOOK_DEEP_CONV = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_networks.DeepConvNet):
    """The book's ``DeepConvNet`` (``ch08/deep_convnet.py``)."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: dict[str, int] = _BOOK_DEEP_CONV[0],
        conv_param_2: dict[str, int] = _BOOK_DEEP_CONV[1],
        conv_param_3: dict[str, int] = _BOOK_DEEP_CONV[2],
        conv_param_4: dict[str, int] = _BOOK_DEEP_CONV[3],
        conv_param_5: dict[str, int] = _BOOK_DEEP_CONV[4],
        conv_param_6: dict[str, int] = _BOOK_DEEP_CONV[5],
        hidden_size: int = 50,
        output_size: int = 10,
    ) -> None:
        convs = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        super().__init__(input_dim, *convs, hidden_size, output_size, dtype=np.float64)
        # He's scale by each weight's fan-in, as the book's list of them for its sizes
        fan_ins = [self.params[f"W{i}"][0].size for i in range(1, 7)]
        fan_ins += [len(self.params["W7"]), hidden_size]
        draw_book_weights(
            self.params, [(f"W{i}", init_std("he", n)) for i, n in enumerate(fan_ins, 1)]
        )
        book_training_layers(self)

    def _training_loss(self, x: Any, t: Any) -> Any:
        # what loss (a training forward, as the book's) and numerical_gradient compute
        super()._training_loss(x, t)
        return cross_entropy_error(self.last_layer.y, t)

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Write ``params`` as the book does: a pickle of the dict of arrays."""
        save_book_params(self.params, file_name)

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Read the book's pickle (safely) or a chainrule checkpoint into ``params``."""
        load_book_params(self.params, file_name)
