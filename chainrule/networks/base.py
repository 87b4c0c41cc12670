"""What every network shares: predict, loss, accuracy, the gradients, the recorded
graph, the config round trip and the parameters' files.

A network subclasses :class:`_LayerNetwork`, builds ``layers``, ``last_layer``, ``params``
and ``dtype`` in its ``__init__``, and says how it is configured: ``_config_fields()``,
the fields of :meth:`~_LayerNetwork.config` after the class's name;
``_config_arguments(config, seed)``, the constructor arguments that rebuild it; and
``_summary()``, what ``repr`` shows before the dtype. Each subclass is registered by its
class name, the name ``config()`` writes, so :meth:`~_LayerNetwork.from_config` finds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from chainrule.checkpoint import check_params_match, save_checkpoint
from chainrule.engine import Step, layer_list, parameter_names
from chainrule.errors import ArgumentError, ShapeError
from chainrule.gradcheck import numerical_gradient
from chainrule.graph import Graph, Value
from chainrule.layers import BatchNormalization, Dropout
from chainrule.losses import class_indices
from chainrule.networks.arguments import _positive_int
from chainrule.safepickle import read_params
from chainrule.validation import check_flag, check_real, node_name

# Every network class by its name, the first of a name only: the book's stand-ins of the
# same names (chainrule.book.networks), defined after chainrule's, leave chainrule's here.
_NETWORKS: dict[str, type[_LayerNetwork]] = {}


class _LayerNetwork:
    """What every network shares, each network below a subclass of it: its ``layers``
    (a dict by name, or a list) ending in ``last_layer``; ``params``, the layers' own
    arrays by the book's names; ``dtype``.

    The methods here walk the layers, or run the engine's :class:`~chainrule.engine.Step`
    (:attr:`fast_step`, the only way in to it). Where the book's networks differ in a
    default, a class attribute says so: ``loss_trains`` (DeepConvNet's ``loss`` runs a
    training forward) and ``accuracy_batch_size`` (100 for the convolutional networks and
    Sequential, all at once for the fully connected ones).
    """

    weight_decay_lambda = 0.0
    loss_trains: ClassVar[bool] = False
    accuracy_batch_size: ClassVar[int | None] = None
    layers: Any
    last_layer: Any
    params: dict[str, np.ndarray]
    dtype: np.dtype
    _fast_step: Step | None = None
    _masks_drawn_from: list[dict[str, Any]] = []  # noqa: RUF012 (replaced, never mutated)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _NETWORKS.setdefault(cls.__name__, cls)

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

    def loss(self, x: Any, t: Any, train_flg: bool | None = None) -> Any:
        """Mean cross-entropy over the batch, plus the weight-decay penalty: of an
        inference forward, or of a training forward with ``train_flg=True``. ``None``
        is the book's default for the network: a training forward for DeepConvNet, an
        inference forward for the others."""
        train_flg = self.loss_trains if train_flg is None else train_flg
        check_flag(type(self).__name__, "train_flg", train_flg)
        if train_flg:
            return self._training_loss(x, t)
        return self.last_layer.forward(self.predict(x), t) + self.weight_decay_loss()

    def _training_loss(self, x: Any, t: Any) -> Any:
        return self.last_layer.forward(self.predict(x, True), t) + self.weight_decay_loss()

    def accuracy(self, x: Any, t: Any, batch_size: int | None = None) -> float:
        """Fraction of samples whose highest score is the label (``t`` integers, a column
        or one-hot rows), predicting ``batch_size`` samples at a time. ``None`` is the
        book's default for the network: all at once for the fully connected ones, 100 for
        the others. Every sample counts (the book's SimpleConvNet leaves out the last
        ``len(x) % batch_size``)."""
        batch_size = self.accuracy_batch_size if batch_size is None else batch_size
        return _accuracy_in_batches(self, x, t, batch_size)

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

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (JSON-serialisable),
        after ``"network"``, the class's name. A layer of a class of a learner's own (in
        a Sequential) is an ArgumentError."""
        return {"network": type(self).__name__, **self._config_fields()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], seed: int | None = None) -> _LayerNetwork:
        """The network, with fresh weights drawn with ``seed``, that :meth:`config`
        describes: of the class its ``"network"`` names, else of this class."""
        network = _NETWORKS.get(config.get("network", ""), cls)
        return network(**network._config_arguments(config, seed))

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> Path:
        """Write ``params`` to ``file_name`` as a chainrule checkpoint (an ``.npz``, not a
        pickle, whatever the name), atomically, with :meth:`config` where there is one;
        return the path."""
        try:
            meta = self.config()
        except ArgumentError:  # a Sequential with a layer of a learner's own
            meta = {"network": type(self).__name__}
        return save_checkpoint(file_name, self.params, meta=meta)

    def load_params(
        self, file_name: str | os.PathLike[str] | Mapping[str, Any] = "params.pkl"
    ) -> None:
        """Copy parameters into this network's own arrays (its layers and an optimiser
        keep them), all or none: from a dict of arrays (ShapeError listing each
        mismatch), or from the file :meth:`save_params` wrote or the book's pickle of a
        dict of arrays, read without running anything (UnsafePickleError for a pickle
        that names other code; CheckpointError for a file that is neither, or does not
        fit).
        """
        if isinstance(file_name, Mapping):
            _copy_params(self.params, file_name)
        else:
            _load_params_into(self.params, file_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join([*self._summary(), self.dtype.name])})"


def _named_layers(layers: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` in order: a dict's keys, else each layer's name or class."""
    if hasattr(layers, "items"):
        return list(layers.items())
    return [(node_name(layer), layer) for layer in layers]


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


def _params_of(layers: list[Any]) -> dict[str, np.ndarray]:
    """The layers' own parameter arrays, by the book's names (W1, b1, …, gamma1, beta1, …)."""
    return {key: getattr(layer, attr) for key, layer, attr in parameter_names(layers)}


def _accuracy_in_batches(network: Any, x: Any, t: Any, batch_size: int | None) -> float:
    """Fraction of samples whose highest score is the label, ``batch_size`` at a time
    (all at once for None)."""
    x, t = np.asarray(x), np.asarray(t)
    if len(x) != len(t) or len(x) == 0:
        raise ShapeError(f"accuracy: {len(x)} samples and {len(t)} labels")
    size = len(x) if batch_size is None else _positive_int("batch_size", batch_size)
    correct = 0
    for start in range(0, len(x), size):
        scores = network.predict(x[start : start + size])
        labels = class_indices(t[start : start + size], scores.shape[-1])
        predicted = scores.argmax(axis=1)
        if labels.shape != predicted.shape:
            raise ShapeError(f"accuracy: labels of shape {t.shape} do not match {len(x)} samples")
        correct += int(np.count_nonzero(predicted == labels))
    return correct / len(x)


def _copy_params(params: dict[str, np.ndarray], given: Mapping[str, Any]) -> None:
    """Copy ``given`` into ``params``' own arrays, all or none (ShapeError otherwise)."""
    problems = [f"missing {key}" for key in params if key not in given]
    problems += [f"unexpected {key}" for key in given if key not in params]
    problems += [
        f"{key}: expected shape {params[key].shape}, got {np.shape(given[key])}"
        for key in params
        if key in given and np.shape(given[key]) != params[key].shape
    ]
    if problems:
        raise ShapeError("parameters do not match the network: " + "; ".join(problems))
    for key, param in params.items():
        param[...] = given[key]


def _load_params_into(params: dict[str, np.ndarray], file_name: Any) -> None:
    """Copy a checkpoint's (or the book's pickle's) parameters into ``params``' own
    arrays, all or none."""
    saved = read_params(file_name)
    saved = {k: v.astype(params[k].dtype) if k in params else v for k, v in saved.items()}
    check_params_match(params, saved, file_name)
    for key, param in params.items():
        param[...] = saved[key]
