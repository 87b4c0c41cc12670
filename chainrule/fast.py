"""The training step of the book's fully connected networks, written for speed.

:class:`FastStep` computes what walking a :class:`~chainrule.networks.MultiLayerNet`'s
layers computes (:meth:`~chainrule.networks.MultiLayerNet.loss_and_gradient_by_layers`):
the loss of a batch and the gradient of every parameter, for ``Affine → ReLU/Sigmoid → …
→ Affine → SoftmaxWithLoss``. The tests hold the two equal. It is faster because:

- every array is written into a buffer kept from step to step, so a step allocates
  nothing larger than a number per sample;
- the inputs are checked once per batch shape (the label values, every step);
- the first layer's input gradient, which nothing uses, is not computed;
- softmax and its gradient run on the transposed logits (NumPy reduces down columns,
  vectorised over the batch, several times as fast as along short rows);
- bias gradients are ``ones · dY`` by BLAS (two to three times ``dY.sum(axis=0)``);
- with plain SGD the learning rate rides on backprop as the loss node's ``dout``, so the
  gradients arrive as the steps themselves and the update is one subtraction;
- its products go through :func:`chainrule.blas.matmul`, shared among threads whose
  number is chosen by timing and never changes the numbers (:mod:`chainrule.blas`).

Where the network is not the standard one (a layer of another class put into
``net.layers``, weights of another dtype, a single 1-d sample, labels as a column (N, 1))
the step hands over to the layers, so it never computes anything else.
"""

from __future__ import annotations

import math
import time
from itertools import pairwise
from typing import Any

import numpy as np

from chainrule.blas import ThreadTuner, matmul
from chainrule.checks import batch_rows
from chainrule.layers import Affine, Relu, Sigmoid
from chainrule.losses import SoftmaxWithLoss, as_batch, check_label_range

__all__ = ["FastStep"]

_ACTIVATIONS = (Relu, Sigmoid)


class _Buffers:
    """The arrays of one batch shape: each layer's outputs and gradients, made once."""

    def __init__(self, batch: int, sizes: list[int], dtype: np.dtype, relu: bool) -> None:
        hidden = sizes[1:-1]
        self.z = [np.empty((batch, n), dtype) for n in sizes[1:]]  # X·W + b of each Affine
        self.h = [np.empty((batch, n), dtype) for n in hidden]  # each activation's output
        self.mask = [np.empty((batch, n), np.bool_) for n in hidden] if relu else []
        self.zeros = [np.zeros((batch, n), dtype) for n in hidden] if relu else []
        self.dh = [np.empty((batch, n), dtype) for n in hidden]  # dL/dh, then dL/dz
        self.local = [np.empty((batch, n), dtype) for n in hidden]  # sigmoid's 1 − y
        self.dW = [np.empty((a, b), dtype) for a, b in pairwise(sizes)]
        self.db = [np.empty(n, dtype) for n in sizes[1:]]
        self.decay = [np.empty((a, b), dtype) for a, b in pairwise(sizes)]
        classes = sizes[-1]
        self.zT = np.empty((classes, batch), dtype)  # logits, then log softmax, transposed
        self.expT = np.empty((classes, batch), dtype)
        self.dzT = np.empty((classes, batch), dtype)
        self.ones = np.ones(batch, dtype)
        self.rows = np.arange(batch)


class FastStep:
    """Loss and gradients of a MultiLayerNet's batch, in reused buffers (see the module).

    ``loss_and_gradient(x, t)`` returns the loss and ``{"W1": dW1, "b1": db1, ...}``; the
    arrays are this object's buffers, overwritten by its next call. ``sgd_step(x, t, lr)``
    applies one SGD update to the network's parameters in place. ``threads`` pins the
    number of threads; by default it is tuned (:class:`~chainrule.blas.ThreadTuner`).
    """

    def __init__(self, network: Any, *, threads: int | None = None) -> None:
        self.network = network
        self.pin_threads(threads)
        self._checked: tuple[Any, ...] | None = None  # what the buffers were made for
        self._buffers: _Buffers | None = None
        self._weights: list[tuple[np.ndarray, np.ndarray]] = []
        self._affines: list[Affine] = []
        self._one_hot = False

    def pin_threads(self, threads: int | None) -> None:
        """Use ``threads`` threads from now on; None tunes the number by timing."""
        self.tuner = ThreadTuner(threads)

    # -- the two entry points -------------------------------------------------------------

    def loss_and_gradient(
        self, x: Any, t: Any, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The loss and the gradients of ``dout · loss``, as the layers compute them."""
        x, t = self.network._as_input(x), np.asarray(t)
        if not self._prepare(x, t):
            return self.network.loss_and_gradient_by_layers(x, t, dout=dout)
        started = time.perf_counter()
        self.tuner.start_step()
        try:
            loss = self._forward(x, t)
            self._backward(x, dout)
        finally:
            self.tuner.end_step(time.perf_counter() - started)
        return loss + self.network.weight_decay_loss(), self._gradients()

    def sgd_step(self, x: Any, t: Any, lr: float) -> float:
        """One step of SGD: ``p -= lr · gradient`` for every parameter; returns the loss.

        Backprop starts from ``dout = lr`` so that the gradients arrive as the steps. When
        the loss is not finite, nothing is updated and the loss is returned as it is.
        """
        x, t = self.network._as_input(x), np.asarray(t)
        if not self._prepare(x, t):
            loss, grads = self.network.loss_and_gradient_by_layers(x, t, dout=lr)
            if math.isfinite(loss):
                for key, param in self.network.params.items():
                    param -= grads[key]
            return float(loss)
        started = time.perf_counter()
        self.tuner.start_step()
        try:
            loss = float(self._forward(x, t)) + self.network.weight_decay_loss()
            if math.isfinite(loss):
                self._backward(x, lr)
                params = self.network.params  # what an optimiser updates: the same arrays
                for key, step in self._gradients().items():
                    params[key] -= step
        finally:
            self.tuner.end_step(time.perf_counter() - started)
        return loss

    # -- checks, once per batch shape -----------------------------------------------------

    def _prepare(self, x: np.ndarray, t: np.ndarray) -> bool:
        """Check the batch and size the buffers when it differs from the last one; False
        when the network or the batch is one only the layers compute."""
        net = self.network
        layers = (*net.layers.values(), net.last_layer)
        # The layer objects themselves (a replaced layer's id could be reused), and the
        # arrays the Affine layers compute with: one given a new W is read again.
        key = (x.shape, t.shape, t.dtype, *layers)
        if key == self._checked and all(
            affine.W is W and affine.b is b for affine, (W, b) in zip(self._affines, self._weights)
        ):
            if not self._one_hot:
                check_label_range(t, net.output_size)  # new values every step
            return True
        self._checked = None
        weights = self._standard_weights(layers)
        if weights is None or x.ndim < 2:
            return False
        rows = batch_rows(weights[0][2], x, weights[0][0].shape)  # Affine1's own checks
        _, _, self._one_hot = as_batch(np.empty((len(x), net.output_size), net.dtype), t)
        if t.ndim == 2 and not self._one_hot:
            return False  # a column (N, 1) of class indices: the layers take it
        relu = isinstance(layers[1], Relu) if len(layers) > 2 else True
        self._buffers = _Buffers(len(rows), net.sizes, net.dtype, relu)
        self._weights = [(W, b) for W, b, _ in weights]
        self._affines = [affine for _, _, affine in weights]
        self._relu = relu
        self._checked = key
        return True

    def _standard_weights(self, layers: tuple[Any, ...]) -> list[tuple[Any, Any, Any]] | None:
        """``[(W, b, affine), ...]`` when ``layers`` are Affine, one activation class,
        Affine, ..., SoftmaxWithLoss of exactly the book's classes and the network's
        shapes and dtype; else None."""
        net = self.network
        *body, loss = layers
        affines, activations = body[0::2], body[1::2]
        if type(loss) is not SoftmaxWithLoss or len(affines) != len(net.sizes) - 1:
            return None
        kinds = {type(layer) for layer in activations}
        if len(kinds) > 1 or not kinds <= set(_ACTIVATIONS) or len(activations) != len(affines) - 1:
            return None
        weights = []
        for layer, fan_in, fan_out in zip(affines, net.sizes, net.sizes[1:]):
            if type(layer) is not Affine or layer.W.shape != (fan_in, fan_out):
                return None
            if layer.W.dtype != net.dtype or layer.b.dtype != net.dtype:
                return None
            weights.append((layer.W, layer.b, layer))
        return weights

    # -- the arithmetic ---------------------------------------------------------------------

    def _forward(self, x: np.ndarray, t: np.ndarray) -> Any:
        buf = self._buffers
        signal = x.reshape(len(x), -1)
        last = len(self._weights) - 1
        for i, (W, b) in enumerate(self._weights):
            z = matmul(signal, W, out=buf.z[i])
            z += b
            if i == last:
                break
            if self._relu:
                np.greater(z, 0, out=buf.mask[i])
                # Against an array of zeros: NumPy runs its two-array loop about three times
                # as fast as its array-and-scalar one.
                signal = np.maximum(z, buf.zeros[i], out=buf.h[i])
            else:  # sigmoid(z) = exp(-log(1 + exp(-z))), as chainrule.layers.sigmoid
                h = np.negative(z, out=buf.h[i])
                np.logaddexp(0.0, h, out=h)
                signal = np.exp(np.negative(h, out=h), out=h)
        return self._softmax_loss(buf.z[last], t)

    def _softmax_loss(self, logits: np.ndarray, t: np.ndarray) -> Any:
        """Mean cross-entropy; leaves softmax's output in ``expT`` (classes × batch)."""
        buf = self._buffers
        zT = buf.zT
        np.copyto(zT, logits.T)
        zT -= np.maximum.reduce(zT, axis=0)  # each sample's largest logit: exp() stays <= 1
        expT = np.exp(zT, out=buf.expT)
        sums = np.add.reduce(expT, axis=0)
        zT -= np.log(sums)  # log softmax
        expT /= sums  # softmax
        if self._one_hot:
            self._labels_T = t.T.astype(zT.dtype, copy=False)
            return -np.vdot(self._labels_T, zT) / len(logits)
        self._labels = t
        return -np.add.reduce(zT[t, buf.rows]) / len(logits)

    def _backward(self, x: np.ndarray, dout: float) -> None:
        buf = self._buffers
        batch = len(x)
        dzT = buf.dzT
        np.copyto(dzT, buf.expT)
        if self._one_hot:
            labels = self._labels_T
            dzT *= labels.sum(axis=0)  # rows of t that do not sum to 1 scale softmax's share
            dzT -= labels
        else:
            dzT[self._labels, buf.rows] -= 1
        dzT *= dout / batch
        dz = dzT.T  # BLAS takes either layout
        inputs = [x.reshape(batch, -1), *buf.h]
        for i in range(len(self._weights) - 1, -1, -1):
            W = self._weights[i][0]
            matmul(inputs[i].T, dz, out=buf.dW[i])
            matmul(buf.ones, dz, out=buf.db[i])
            if i == 0:
                break  # the network's input needs no gradient
            dh = matmul(dz, W.T, out=buf.dh[i - 1])
            if self._relu:
                np.multiply(dh, buf.mask[i - 1], out=dh)
            else:
                y = buf.h[i - 1]
                local = np.subtract(1.0, y, out=buf.local[i - 1])
                local *= y
                dh *= local
            dz = dh
        decay = self.network.weight_decay_lambda * dout
        if decay:
            for (W, _), dW, scratch in zip(self._weights, buf.dW, buf.decay):
                dW += np.multiply(W, decay, out=scratch)

    def _gradients(self) -> dict[str, np.ndarray]:
        buf = self._buffers
        grads = {}
        for i, (dW, db) in enumerate(zip(buf.dW, buf.db), start=1):
            grads[f"W{i}"], grads[f"b{i}"] = dW, db
        return grads
