"""The training step of any network of chainrule's layers, by the engine's kernels.

:class:`Step` reads ``network.layers`` (a dict or a list), ``network.last_layer``,
``network.dtype`` and ``network.params``, and computes what walking the layers computes
(``network.loss_and_gradient_by_layers``). It plans the kernels once per batch shape and
set of layers, and plans again when a layer or a parameter array is replaced. For what it
does not know (a layer of another class, another loss, parameters of another dtype, a
single 1-d sample, a batch the layers would refuse) it hands the step to the layers, so
it never computes anything else and the layers' errors say what is wrong.
"""

from __future__ import annotations

import math
import struct
import time
from contextlib import nullcontext
from functools import partial
from typing import Any

import numpy as np

from chainrule.blas import ThreadTuner, share, workers
from chainrule.engine.buffers import Buffers
from chainrule.engine.dense import (
    BatchNormKernel,
    DropoutKernel,
    Kernel,
    draw_uniform,
    uniform_dtype,
)
from chainrule.engine.loss import SoftmaxLossKernel
from chainrule.engine.plan import make_plan, parameter_names
from chainrule.engine.process import Child, forks
from chainrule.losses import SoftmaxWithLoss, as_batch, check_label_range

__all__ = ["Step", "layer_list"]

# A training batch goes through in two halves, each through kernels of its own, where its
# samples never meet before the loss (no batch normalisation) and each half's products
# computed in chunks (the convolutions') have at least this many multiply-adds: the two
# halves then run side by side on two workers (the second in a forked process, where
# there is one: chainrule.engine.process), without each layer's wait for its last chunk.
# (Products shared in blocks, an Affine's, ran slower split.) The halves do not
# depend on the thread count (one worker computes them one after the other), so neither
# do the numbers.
_SPLIT_MULTIPLIES = 100_000_000
# What the parent sends its child each step: the part's dout, whether to skip backward when
# the loss is not finite, whether the labels are one-hot rows, the part's worker count
_MESSAGE = "<d??i"
# How long the parent waits for its child's part, after finishing its own, before it gives
# up on the child (hung or dead) and computes the part itself: the halves are the same work
_WAIT_FACTOR = 10.0
_LEAST_WAIT_S = 30.0


def layer_list(layers: Any) -> list[Any]:
    """A network's layers in order, whether it keeps them in a dict or a list."""
    return list(layers.values()) if hasattr(layers, "values") else list(layers)


class _Plan:
    """The kernels of one set of layers and one input shape, and what they were made for:
    one list of kernels for each part of the batch (``samples``, a slice each)."""

    def __init__(
        self, layers: list[Any], parts: list[tuple[slice, list[Kernel]]], shape: tuple[int, ...]
    ) -> None:
        self.layers = layers
        self.names = list(parameter_names(layers))
        self.arrays = [getattr(layer, attribute) for _, layer, attribute in self.names]
        self.samples = [samples for samples, _ in parts]
        self.parts = [kernels for _, kernels in parts]
        self.kernels = self.parts[0]
        self.losses = [SoftmaxLossKernel() for _ in parts]
        self.shape = shape
        # a fused kernel by its convolution, in each part
        self.kernel_of = [{id(k.layer): k for k in kernels} for kernels in self.parts]
        # where the Dropout kernels are, the same in each part
        self.dropouts = [i for i, k in enumerate(self.kernels) if isinstance(k, DropoutKernel)]
        # The process that runs the second part (chainrule.engine.process), and the
        # inputs' shapes and dtypes it was made for; False once one has failed
        self.child: Child | bool | None = None
        self.child_made_for: tuple[Any, ...] = ()

    def fits(self, layers: list[Any], shape: tuple[int, ...]) -> bool:
        if shape != self.shape or len(layers) != len(self.layers):
            return False
        if not all(a is b for a, b in zip(layers, self.layers)):
            return False
        arrays = (getattr(layer, attribute) for _, layer, attribute in self.names)
        return all(a is b for a, b in zip(arrays, self.arrays))


class Step:
    """Loss and gradients of a network's batch by the engine (see the module).

    ``loss_and_gradient(x, t)`` returns the loss and ``{"W1": dW1, ...}``, arrays of this
    object's buffers that its next call overwrites (the networks' own methods return
    copies); ``sgd_step(x, t, lr)`` updates the parameters in place; ``scores(x)`` is the
    inference forward. ``threads`` pins the BLAS worker count (by default it is tuned,
    :class:`~chainrule.blas.ThreadTuner`).
    """

    def __init__(self, network: Any, *, threads: int | None = None) -> None:
        self.network = network
        self.pin_threads(threads)
        self._train: _Plan | None = None
        self._infer: _Plan | None = None
        self._labels: tuple[Any, ...] | None = None  # the shape and dtype of checked labels
        self._one_hot = False
        self._scratch = Buffers()
        self._chunks = Buffers()  # what the convolutions keep only while they run
        self._beside: dict[str, np.ndarray] | None = None  # the child's part's gradients

    def pin_threads(self, threads: int | None) -> None:
        """Use ``threads`` BLAS workers from now on; None tunes the number by timing."""
        self.tuner = ThreadTuner(threads)

    # -- the entry points -------------------------------------------------------------

    def loss_and_gradient(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The loss and the gradients of ``dout · loss``, as the layers compute them."""
        net = self.network
        x, t = net._as_input(x), np.asarray(t)
        plan = self._training_plan(x, t)
        if plan is None:
            return net.loss_and_gradient_by_layers(x, t, dout=dout)
        loss = self._run(plan, x, t, dout)
        return loss + net.weight_decay_loss(), self._gradients(plan, dout)

    def sgd_step(self, x: Any, t: Any, lr: float) -> float:
        """One step of SGD, ``p -= lr · gradient`` for every parameter; returns the loss.

        Backprop starts from ``dout = lr``, so the gradients arrive as the steps. When the
        loss is not finite, nothing is updated and the loss is returned as it is.
        """
        net = self.network
        x, t = net._as_input(x), np.asarray(t)
        plan = self._training_plan(x, t)
        if plan is None:
            loss, grads = net.loss_and_gradient_by_layers(x, t, dout=lr)
            steps = grads
        else:
            loss = self._run(plan, x, t, lr, backward_if_finite=True)
            loss = float(loss) + net.weight_decay_loss()
            steps = self._gradients(plan, lr) if math.isfinite(loss) else {}
        if math.isfinite(loss):
            for key, step in steps.items():
                net.params[key] -= step
        return float(loss)

    def scores(self, x: Any) -> np.ndarray | None:
        """The scores (N, classes) of an inference forward, a new array; None where the
        layers must compute them."""
        x = self.network._as_input(x)
        layers = layer_list(self.network.layers)
        plan = self._infer
        if plan is None or not plan.fits(layers, x.shape):
            plan = self._infer = self._plan(layers, x, split=False)
            if plan is None:
                return None
        # BLAS on one thread, as in the steps (fit evaluates inside its own hold already;
        # a hold inside a hold would end the outer one)
        with nullcontext() if self.tuner._held else self.tuner.hold():
            signal = x
            for kernel in plan.kernels:
                signal = kernel.forward(signal, False)
            return np.array(signal)

    # -- planning -----------------------------------------------------------------------

    def _plan(self, layers: list[Any], x: np.ndarray, *, split: bool = True) -> _Plan | None:
        if x.ndim < 2 or type(self.network.last_layer) is not SoftmaxWithLoss:
            return None
        kernels = make_plan(layers, self.network.dtype, self._chunks)
        if kernels is None:
            return None
        shape = x.shape
        for kernel in kernels:
            shape = kernel.out_shape(shape)
            if shape is None:
                return None  # the layers' own checks say what does not fit
        if len(shape) != 2:
            return None
        n = len(x)
        if not (split and _splits(kernels, (n // 2, *x.shape[1:]))):
            return _Plan(layers, [(slice(0, n), kernels)], x.shape)
        other = make_plan(layers, self.network.dtype, self._chunks)
        halves = [(slice(0, n // 2), kernels), (slice(n // 2, n), other)]
        return _Plan(layers, halves, x.shape)

    def _training_plan(self, x: np.ndarray, t: np.ndarray) -> _Plan | None:
        layers = layer_list(self.network.layers)
        plan = self._train
        if plan is None or not plan.fits(layers, x.shape):
            if plan is not None and plan.child:
                plan.child.close()
            plan = self._train = self._plan(layers, x)
            self._labels = None
            if plan is None:
                return None
        classes = self._classes(plan)
        if self._labels != (t.shape, t.dtype):
            # The loss layer's own checks, once per shape of labels.
            _, _, self._one_hot = as_batch(np.empty((len(x), classes), x.dtype), t)
            self._labels = (t.shape, t.dtype)
        if not self._one_hot:
            check_label_range(t.reshape(len(x)), classes)  # new values every step
        return plan

    def _classes(self, plan: _Plan) -> int:
        shape = plan.shape
        for kernel in plan.kernels:
            shape = kernel.out_shape(shape)
        return shape[1]

    # -- the arithmetic ---------------------------------------------------------------

    def _run(
        self,
        plan: _Plan,
        x: np.ndarray,
        t: np.ndarray,
        dout: float,
        *,
        backward_if_finite: bool = False,
    ) -> Any:
        """Forward and backward through the kernels of each part of the batch, the thread
        count set by the tuner; the loss of the whole batch."""
        started = time.perf_counter()
        count = self.tuner.start_step()
        self._beside = None
        try:
            labels = t if self._one_hot else t.reshape(len(x))
            losses: list[Any] = [None] * len(plan.parts)
            # Each part's inputs, labels and share of dout (the loss is the batch's mean)
            inputs = [
                (x[s], labels[s], float(dout) * (s.stop - s.start) / len(x), backward_if_finite)
                for s in plan.samples
            ]

            def run(part: int) -> None:
                losses[part] = self._run_part(plan, part, *inputs[part], self._one_hot)

            if len(plan.parts) == 1:
                run(0)
            else:
                self._draw_dropout(plan, x)
                each = max(1, count // len(plan.parts))  # the workers of each part
                if count == 1 or not self._run_beside(plan, inputs[1], run, each, losses):
                    share([partial(self._on_workers, each, run, i) for i in range(len(plan.parts))])
        finally:
            self.tuner.end_step(time.perf_counter() - started)
        if len(losses) == 1:
            return losses[0]
        return sum(loss * (s.stop - s.start) for loss, s in zip(losses, plan.samples)) / len(x)

    def _run_part(
        self,
        plan: _Plan,
        part: int,
        x: np.ndarray,
        labels: np.ndarray,
        dout: float,
        backward_if_finite: bool,
        one_hot: bool,
    ) -> Any:
        """Forward and backward of one part of the batch, its inputs and labels given and
        ``dout`` its share; returns its loss."""
        kernels, loss_kernel = plan.parts[part], plan.losses[part]
        # Parameters grown too large (a diverging run) overflow the scores: the loss is
        # then not finite, which is the report (fit's TrainingError), not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            signal = x
            for kernel in kernels:
                signal = kernel.forward(signal, True)
            loss = loss_kernel.forward(signal, labels, one_hot)
        if backward_if_finite and not math.isfinite(loss):
            return loss
        dy = loss_kernel.backward(dout)
        for i in range(len(kernels) - 1, -1, -1):
            dy = kernels[i].backward(dy, i > 0)  # the input needs no gradient
        return loss

    @staticmethod
    def _on_workers(count: int, run: Any, part: int) -> None:
        """``run(part)`` with ``count`` workers sharing its products and chunks."""
        with workers(count):
            run(part)

    # -- the second part in a process of its own (chainrule.engine.process) -------------

    def _run_beside(
        self, plan: _Plan, inputs: tuple[Any, ...], run: Any, each: int, losses: list[Any]
    ) -> bool:
        """Run the second part of two (``inputs`` its own) in the plan's child process,
        the first here meanwhile; False, having run neither, where there is no child."""
        child = self._child(plan, *inputs[:2])
        if child is None or not self._send(plan, child, inputs, each):
            return False
        try:
            started = time.perf_counter()
            self._on_workers(each, run, 0)
            waited = max(_LEAST_WAIT_S, _WAIT_FACTOR * (time.perf_counter() - started))
            served = child.reply(waited)
        except BaseException:
            child.close()  # its reply would answer the next request
            raise
        if not served:
            plan.child = False  # it failed or hung: the parts run on threads from now on
            self._on_workers(each, run, 1)
            return True
        losses[1] = child.arrays["loss"][()]
        self._beside = {key: child.arrays[f"grad {key}"] for key, _, _ in plan.names}
        return True

    def _send(self, plan: _Plan, child: Child, inputs: tuple[Any, ...], each: int) -> bool:
        """Write the parameters and the second part's inputs where the child reads them,
        and ask it to run; False when it is gone."""
        x, labels, dout, backward_if_finite = inputs
        arrays = child.arrays
        for key, layer, attribute in plan.names:
            np.copyto(arrays[f"param {key}"], getattr(layer, attribute))
        np.copyto(arrays["x"], x)
        np.copyto(arrays["labels"], labels)
        for i in plan.dropouts:
            np.copyto(arrays[f"draws{i}"], plan.parts[1][i].draws)
        message = struct.pack(_MESSAGE, dout, backward_if_finite, self._one_hot, each)
        if not child.request(message):
            plan.child = False  # it died: the parts run on threads from now on
            return False
        return True

    def _child(self, plan: _Plan, x: np.ndarray, labels: np.ndarray) -> Child | None:
        """The plan's child process for the second part's ``x`` and ``labels``, made when
        first needed; None where there is none."""
        made_for = (x.dtype, labels.shape, labels.dtype)
        if plan.child and not plan.child.ours:
            plan.child = None  # this process is a fork of the one whose child it is
        if plan.child and (plan.child_made_for != made_for or not plan.child.alive):
            plan.child.close()
            plan.child = None
        if plan.child is None and forks():
            specs = {"x": (x.shape, x.dtype), "labels": (labels.shape, labels.dtype)}
            specs["loss"] = ((), x.dtype)
            for key, layer, attribute in plan.names:
                array = getattr(layer, attribute)
                specs[f"param {key}"] = specs[f"grad {key}"] = (array.shape, array.dtype)
            for i in plan.dropouts:
                draws = plan.parts[1][i].draws
                specs[f"draws{i}"] = (draws.shape, draws.dtype)
            try:
                plan.child = Child(specs, partial(self._serve, plan))
            except OSError:
                plan.child = False  # no process to be had (a limit on them, say)
            plan.child_made_for = made_for
        return plan.child or None

    def _serve(self, plan: _Plan, arrays: dict[str, np.ndarray], message: bytes) -> None:
        """In the child: the second part of the batch, from the inputs and parameters the
        parent wrote into ``arrays``, its loss and gradients written there."""
        dout, backward_if_finite, one_hot, count = struct.unpack(_MESSAGE, message)
        for key, layer, attribute in plan.names:
            np.copyto(getattr(layer, attribute), arrays[f"param {key}"])
        for i in plan.dropouts:
            plan.parts[1][i].draws = arrays[f"draws{i}"]
        x, labels = arrays["x"], arrays["labels"]
        # BLAS on one thread, as in a step, and left so: setting it back after each part
        # and again before the next made the child the slower of the two
        self.tuner.one_blas_thread()
        with workers(count):
            loss = self._run_part(plan, 1, x, labels, dout, backward_if_finite, one_hot)
        arrays["loss"][()] = loss
        if math.isfinite(loss) or not backward_if_finite:
            for key, layer, attribute in plan.names:
                np.copyto(arrays[f"grad {key}"], plan.kernel_of[1][id(layer)].grads[attribute])

    def _draw_dropout(self, plan: _Plan, x: np.ndarray) -> None:
        """The numbers of each Dropout's mask for the whole batch, drawn in the layers'
        order as they draw them, each part's kernels handed their part."""
        shape, dtype = x.shape, uniform_dtype(x.dtype)
        for i, kernel in enumerate(plan.parts[0]):
            if isinstance(kernel, DropoutKernel):
                draws = self._scratch.get(f"draws{i}", shape, dtype)
                draw_uniform(kernel.layer, draws)
                for kernels, samples in zip(plan.parts, plan.samples):
                    kernels[i].draws = draws[samples]
            shape = kernel.out_shape(shape)

    def _gradients(self, plan: _Plan, dout: float) -> dict[str, np.ndarray]:
        """The kernels' gradient buffers by the parameters' names; weight decay's share
        ``dout · λ · W`` added to each W."""
        decay = dout * getattr(self.network, "weight_decay_lambda", 0.0)
        grads = {}
        for key, layer, attribute in plan.names:
            grad = plan.kernel_of[0][id(layer)].grads[attribute]
            if len(plan.parts) > 1:  # the parts' sum, in their order
                first, grad = grad, self._scratch.get(f"sum {key}", grad.shape, grad.dtype)
                np.copyto(grad, first)
                for part, kernel_of in enumerate(plan.kernel_of[1:], 1):
                    beside = self._beside if part == 1 else None
                    grad += beside[key] if beside else kernel_of[id(layer)].grads[attribute]
            if decay and key[0] == "W":
                W = getattr(layer, attribute)
                grad += np.multiply(W, decay, out=self._scratch.get(key, W.shape, W.dtype))
            grads[key] = grad
        return grads


def _splits(kernels: list[Kernel], half: tuple[int, ...]) -> bool:
    """Whether a batch goes through in halves (see ``_SPLIT_MULTIPLIES``), the shape of
    the first half given."""
    if half[0] < 1 or any(isinstance(kernel, BatchNormKernel) for kernel in kernels):
        return False
    multiplies, shape = 0, half
    for kernel in kernels:
        multiplies += kernel.chunked_multiplies(shape)
        shape = kernel.out_shape(shape)
    return multiplies >= _SPLIT_MULTIPLIES
