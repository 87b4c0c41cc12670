"""SimpleConvNet's training step, fast: the numbers its layers compute, computed apart.

The readable layers (:mod:`chainrule.layers`: Convolution, Relu, Pooling, Affine) are
the book's; :meth:`chainrule.networks.SimpleConvNet.loss_and_gradient_by_layers` walks
them. This module computes the same loss and gradients for the training step, and the
tests hold the two equal (float64 to 1e-12 relative, float32 to 1e-5), as
:mod:`chainrule.fast` does for the fully connected networks. What it does differently,
for pooling whose stride equals its P×P window (the book's 2×2, stride 2, no padding):

- the convolution's outputs are computed in the order the pooling reads them: first
  every window's top-left position (of all images), then every window's next one, and
  so on; positions no window covers (an odd last row or column) are not computed at all;
- im2col by strides, copied once into a buffer that is reused from step to step and
  laid out a row per filter entry, with a row of ones, so the bias rides in the product
  and its gradient in dW's;
- the convolution's output in rows (window position, image, ph, pw; channels last), so
  pooling is the maximum of P·P contiguous blocks, and ReLU runs after the pooling, on a
  quarter of the values (the maximum of ReLUs is the ReLU of the maximum);
- the first hidden layer's weights are reordered to take the pooled values channels
  last, instead of transposing the values to the book's (channel, row, column) order;
- in backward the gradient goes to each window's first maximum (the layer's argmax,
  position by position) where the maximum is positive (a window whose maximum is 0 or
  less passes nothing back, as ReLU's mask would);
- no gradient for the input images: the first layer's dx is never needed to train;
- its products go through :func:`chainrule.blas.matmul`, shared among threads whose
  number is chosen by timing (:mod:`chainrule.blas`), as for the fully connected networks.

Anything else (other layers, a pooling with another stride, labels as a column) falls
back to the layers. The gradient arrays are new on every call.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule.blas import ThreadTuner, matmul
from chainrule.layers import Affine, Convolution, Pooling, Relu
from chainrule.losses import SoftmaxWithLoss, as_batch, log_softmax

__all__ = ["FastConvStep"]


class FastConvStep:
    """The loss and gradients of a :class:`~chainrule.networks.SimpleConvNet`."""

    _KINDS = (Convolution, Relu, Pooling, Affine, Relu, Affine)

    def __init__(self, network: Any, *, threads: int | None = None) -> None:
        self.network = network
        self._buffers: dict[str, np.ndarray] = {}  # the large arrays, reused from step to step
        self._inference_buffers: dict[str, np.ndarray] = {}  # the same, for scores()
        self.pin_threads(threads)

    def pin_threads(self, threads: int | None) -> None:
        """Use ``threads`` threads from now on; None tunes the number by timing."""
        self.tuner = ThreadTuner(threads)

    def applies(self, x: np.ndarray, t: np.ndarray) -> bool:
        """Whether the network is the book's layers, in order, and the data fits them."""
        t_fits = t.ndim == 1 or (t.ndim == 2 and t.shape[1] == self.network.output_size)
        return t_fits and self.applies_to(x)

    def applies_to(self, x: np.ndarray) -> bool:
        """Whether the network is the book's layers, in order, and the images fit them."""
        net = self.network
        layers = list(net.layers.values())
        if len(layers) != 6 or not all(type(a) is b for a, b in zip(layers, self._KINDS)):
            return False
        if type(net.last_layer) is not SoftmaxWithLoss:
            return False
        pool = layers[2]
        if not (pool.pool_h == pool.pool_w == pool.stride and pool.pad == 0):
            return False
        conv, hidden, last = layers[0], layers[3], layers[5]
        params = net.params
        if conv.W is not params["W1"] or conv.b is not params["b1"]:
            return False
        if hidden.W is not params["W2"] or last.W is not params["W3"]:
            return False
        if hidden.b is not params["b2"] or last.b is not params["b3"]:
            return False
        if x.ndim != 4 or x.shape[1:] != tuple(net.input_dim) or x.dtype != net.dtype:
            return False
        # Where the pooled maps do not fit W2, the layers' own checks say what is wrong.
        return self._pooled_size(x, conv, pool.stride) * conv.W.shape[0] == len(hidden.W)

    @staticmethod
    def _pooled_size(x: np.ndarray, conv: Convolution, window: int) -> int:
        _, _, FH, FW = conv.W.shape
        OH = (x.shape[2] + 2 * conv.pad - FH) // conv.stride + 1
        OW = (x.shape[3] + 2 * conv.pad - FW) // conv.stride + 1
        return (OH // window) * (OW // window)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """The network's scores (logits) of images x, as ``predict`` computes them; call
        :meth:`applies_to` first. Its buffers are its own, so evaluating between training
        steps, in chunks of another size, leaves the step's buffers as they are."""
        return self._forward(x, self._inference_buffers)[-1]

    @staticmethod
    def _im2col(
        x: np.ndarray, conv: Convolution, P: int, store: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, int, int]:
        """The windows of x, a row per filter entry (c, fh, fw) and a column per output
        position, ordered (i, j, n, ph, pw): the output at row P·ph + i, column P·pw + j
        of image n. A last row of ones carries the bias. Returns it with PH and PW."""
        _, C, FH, FW = conv.W.shape
        pad, s = conv.pad, conv.stride
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        N, _, H, W = x.shape
        PH, PW = ((H - FH) // s + 1) // P, ((W - FW) // s + 1) // P
        K = C * FH * FW
        col = _buffer(store, "col", (K + 1, P * P * N * PH * PW), x.dtype)
        col[K] = 1
        sN, sC, sH, sW = x.strides
        windows = as_strided(  # (C, FH, FW, i, j, N, PH, PW): a view, nothing copied
            x,
            (C, FH, FW, P, P, N, PH, PW),
            (sC, sH, sW, s * sH, s * sW, sN, P * s * sH, P * s * sW),
            writeable=False,
        )
        np.copyto(col[:K].reshape(C, FH, FW, P, P, N, PH, PW), windows)
        return col, PH, PW

    def loss_and_gradient(
        self, x: np.ndarray, t: np.ndarray, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The loss and the gradients of ``dout · loss``; call :meth:`applies` first."""
        started = time.perf_counter()
        self.tuner.start_step()
        try:
            return self._loss_and_gradient(x, t, dout)
        finally:
            self.tuner.end_step(time.perf_counter() - started)

    def _forward(self, x: np.ndarray, store: dict[str, np.ndarray]) -> tuple[Any, ...]:
        """The forward pass, into the buffers of ``store``: the convolution in rows,
        pooled as the maximum of P·P blocks, then ReLU, the hidden layer and the scores;
        returns what backward needs."""
        net = self.network
        conv, P = net.layers["Conv1"], net.layers["Pool1"].stride
        W1, b1, W2, b2, W3, b3 = (net.params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        FN, N, H2 = W1.shape[0], len(x), W2.shape[1]
        col, PH, PW = self._im2col(x, conv, P, store)
        weights = np.concatenate([W1.reshape(FN, -1).T, b1[None, :]])  # (C·FH·FW + 1, FN)
        out = matmul(col.T, weights, out=_buffer(store, "out", (col.shape[1], FN), x.dtype))
        blocks = out.reshape(P * P, N * PH * PW * FN)  # block c: window position c
        pooled = blocks[0].copy()
        for block in blocks[1:]:
            np.maximum(pooled, block, out=pooled)
        np.maximum(pooled, 0, out=pooled)
        flat = pooled.reshape(N, PH * PW * FN)  # channels last
        # W2's rows in the same order: (ph, pw, channel) instead of the book's (channel, ph, pw)
        W2_last = _buffer(store, "W2", (PH * PW * FN, H2), x.dtype)
        np.copyto(W2_last.reshape(PH * PW, FN, H2), W2.reshape(FN, PH * PW, H2).transpose(1, 0, 2))
        hidden = matmul(flat, W2_last)
        hidden += b2
        np.maximum(hidden, 0, out=hidden)
        scores = matmul(hidden, W3)
        scores += b3
        return col, out, blocks, pooled, flat, W2_last, hidden, scores

    def _loss_and_gradient(
        self, x: np.ndarray, t: np.ndarray, dout: float
    ) -> tuple[Any, dict[str, np.ndarray]]:
        W1, W2, W3 = (self.network.params[k] for k in ("W1", "W2", "W3"))
        FN, N, H2 = W1.shape[0], len(x), W2.shape[1]
        col, out, blocks, pooled, flat, W2_last, hidden, scores = self._forward(x, self._buffers)
        PH_PW = flat.shape[1] // FN

        scores, labels, one_hot = as_batch(scores, t)
        log_y = log_softmax(scores)
        picked = labels * log_y if one_hot else log_y[np.arange(N), labels]
        loss = -picked.sum() / N

        # Backward, as the layers' (each step's numbers in the same order).
        dscores = np.exp(log_y)
        if one_hot:
            dscores *= labels.sum(axis=1, keepdims=True)
            dscores -= labels
        else:
            dscores[np.arange(N), labels] -= 1
        dscores *= dout / N
        grads = {"W3": matmul(hidden.T, dscores), "b3": dscores.sum(axis=0)}
        dhidden = matmul(dscores, W3.T)
        dhidden *= hidden > 0
        dW2_last = matmul(flat.T, dhidden)
        grads["W2"] = np.ascontiguousarray(
            dW2_last.reshape(PH_PW, FN, H2).transpose(1, 0, 2)
        ).reshape(W2.shape)
        grads["b2"] = dhidden.sum(axis=0)
        dpooled = matmul(dhidden, W2_last.T).reshape(-1)  # (N, PH, PW, FN), as pooled

        # Each window's first maximum, position by position, takes the gradient, where the
        # maximum is positive (ReLU's mask): the rest of the window gets none.
        store = self._buffers
        dblocks = _buffer(store, "dout", out.shape, x.dtype).reshape(blocks.shape)
        hit = _buffer(store, "hit", pooled.shape, bool)
        open_ = np.greater(pooled, 0, out=_buffer(store, "open", pooled.shape, bool))
        for block, dblock in zip(blocks, dblocks):
            np.equal(block, pooled, out=hit)
            hit &= open_
            open_ ^= hit  # a window's later maxima (ties) get nothing
            np.multiply(dpooled, hit, out=dblock)
        with self.tuner.one_thread():  # two threads make this long, thin product slower
            both = matmul(col, dblocks.reshape(out.shape))  # (C·FH·FW + 1, FN): dW1, and db1
        grads["W1"] = np.ascontiguousarray(both[:-1].T).reshape(W1.shape)
        grads["b1"] = both[-1].copy()
        order = ("W1", "b1", "W2", "b2", "W3", "b3")
        return loss, {key: grads[key] for key in order}


def _buffer(
    store: dict[str, np.ndarray], name: str, shape: tuple[int, ...], dtype: Any
) -> np.ndarray:
    """The array ``store`` keeps for ``name`` from step to step; new when the shape changes."""
    buffer = store.get(name)
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        buffer = store[name] = np.empty(shape, dtype)
    return buffer
