"""The book's fully connected networks, built from the layers of chapter 5.

``MultiLayerNet`` is ``(Affine → activation) × hidden layers → Affine → SoftmaxWithLoss``;
``TwoLayerNet`` is the one-hidden-layer ReLU case with the book's 0.01 initial scale.
``params`` holds the very arrays the Affine layers use, so an optimiser that updates them
in place trains the network.

Shapes: ``x`` is (N, input_size) or any (N, ...) with input_size values per sample;
``t`` is (N,) integer labels or (N, output_size) one-hot rows.

Two ways to the same gradients: :meth:`MultiLayerNet.loss_and_gradient_by_layers` walks
the layers, as the book's ``gradient`` does; :meth:`~MultiLayerNet.loss_and_gradient` and
:meth:`~MultiLayerNet.gradient`, the training step, run :class:`chainrule.fast.FastStep`,
which computes the same numbers in buffers reused from step to step (the tests hold the
two equal). Its gradients are overwritten by its next call: copy them to keep them.
Everything else (``predict``, ``loss``, ``accuracy``, ``record``, ``numerical_gradient``)
runs the layers and returns arrays of its own.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from chainrule.errors import ShapeError
from chainrule.fast import FastStep
from chainrule.gradcheck import numerical_gradient
from chainrule.graph import Graph, Value
from chainrule.init import normal_weight
from chainrule.layers import Affine, Relu, Sigmoid
from chainrule.losses import SoftmaxWithLoss, class_indices

__all__ = ["ACTIVATIONS", "MultiLayerNet", "TwoLayerNet"]

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class MultiLayerNet:
    """A fully connected network trained by backpropagation.

    Args:
        input_size: values per input sample (784 for MNIST).
        hidden_size_list: the width of each hidden layer, e.g. ``[100, 100]``.
        output_size: number of classes.
        activation: ``"relu"`` or ``"sigmoid"``.
        weight_init_std: a number, or ``"relu"``/``"he"``, ``"sigmoid"``/``"xavier"``.
        weight_decay_lambda: L2 strength λ; adds ``λ/2 · Σ‖W‖²`` to the loss, ``λW`` to dW.
        dtype: float32 (default, fast) or float64 (for gradient checks).
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
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        sizes = [
            _positive_int("input_size", input_size),
            *(_positive_int("hidden size", h) for h in hidden_size_list),
            _positive_int("output_size", output_size),
        ]
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        self.dtype = np.dtype(dtype)
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if not (np.isfinite(weight_decay_lambda) and weight_decay_lambda >= 0):
            raise ValueError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda!r}")
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
        self._fast_step: FastStep | None = None  # made on the first training step

    @property
    def input_size(self) -> int:
        return self.sizes[0]

    @property
    def hidden_size_list(self) -> list[int]:
        return self.sizes[1:-1]

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    def _as_input(self, x: Any) -> np.ndarray:
        # Compute in the network's dtype: float64 data meeting float32 weights would
        # silently run the whole network in float64, at half the speed.
        x = np.asarray(x)
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    def predict(self, x: Any) -> np.ndarray:
        """Scores (logits) before softmax: (N, output_size)."""
        x = self._as_input(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def weight_decay_loss(self) -> float:
        """The L2 penalty ``λ/2 · Σ‖W‖²`` included in :meth:`loss`."""
        if not self.weight_decay_lambda:
            return 0.0
        squares = sum(float(np.vdot(W, W)) for key, W in self.params.items() if key[0] == "W")
        return 0.5 * self.weight_decay_lambda * squares

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

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of :meth:`loss` by backpropagation, with the same keys as ``params``.

        The arrays are reused: the next ``gradient`` or ``loss_and_gradient`` call
        overwrites them (see :meth:`loss_and_gradient`). Copy them to keep them.
        """
        return self.loss_and_gradient(x, t)[1]

    def loss_and_gradient(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """:meth:`loss` and :meth:`gradient` from one forward and one backward pass: the
        training step, by :class:`chainrule.fast.FastStep`.

        The numbers are those of :meth:`loss_and_gradient_by_layers`. The gradient arrays
        are the step's buffers, valid until the next call, which overwrites them in place;
        ``{k: g.copy() for k, g in grads.items()}`` keeps a set.
        """
        return self.fast_step.loss_and_gradient(x, t, dout=dout)

    @property
    def fast_step(self) -> FastStep:
        """The training step's :class:`~chainrule.fast.FastStep`, made on first use."""
        if self._fast_step is None:
            self._fast_step = FastStep(self)
        return self._fast_step

    def loss_and_gradient_by_layers(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """:meth:`loss`, and the gradients of ``dout · loss`` by walking the layers
        backwards, as the book's ``gradient`` does; the arrays are new on every call.

        ``dout`` is the gradient fed into the loss node, as in chapter 5 (1 by default).
        """
        loss = self.loss(x, t)
        grad = self.last_layer.backward(dout)
        for layer in reversed(self.layers.values()):
            grad = layer.backward(grad)
        grads = {}
        for i in range(1, len(self.sizes)):
            affine = self.layers[f"Affine{i}"]
            grads[f"W{i}"] = affine.dW + (dout * self.weight_decay_lambda) * affine.W
            grads[f"b{i}"] = affine.db
        return loss, grads

    def numerical_gradient(self, x: Any, t: Any, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of :meth:`loss` by central differences (slow; for checking)."""
        return {
            key: numerical_gradient(lambda: self.loss(x, t), param, h)
            for key, param in self.params.items()
        }

    def record(self, x: Any, t: Any) -> tuple[Graph, Value]:
        """Run the forward pass as a recorded :class:`Graph`; return it and the loss value.

        The graph's nodes are this network's own layers (one node per layer), so after
        ``graph.backward(loss)`` each Affine node's layer holds its ``dW`` and ``db``.
        Weight decay is not part of the recorded graph.
        """
        graph = Graph()
        signal = graph.input(self._as_input(x), "x")
        for name, layer in self.layers.items():
            signal = graph.apply(layer, signal, name=name)
        loss = graph.apply(self.last_layer, signal, graph.input(t, "t"), name="SoftmaxWithLoss")
        return graph, loss

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
        TwoLayerNet for a TwoLayerNet's config, else a MultiLayerNet."""
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
        dtype: Any = np.float32,
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
