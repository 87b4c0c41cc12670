"""SimpleConvNet's training step, fast: the numbers its layers compute, computed apart.

The readable layers (:mod:`chainrule.layers`: Convolution, Relu, Pooling, Affine) are
the book's; :meth:`chainrule.networks.SimpleConvNet.loss_and_gradient_by_layers` walks
them. This module computes the same loss and gradients for the training step, and the
tests hold the two equal (float64 to 1e-12 relative, float32 to 1e-5), as
:mod:`chainrule.fast` does for the fully connected networks. What it does differently:

- im2col by strides: ``sliding_window_view`` of the (padded) images, copied once into
  a buffer of rows (N·OH·OW, C·FH·FW) that is reused from step to step, with a column
  of ones, so the bias rides in the product and its gradient in dW's;
- the convolution's output stays in rows (N·OH·OW, FN), channels last: no transposes;
- pooling by reshape, for the book's pooling whose stride equals its window (2×2,
  stride 2, no padding): the maximum over two axes, and in backward the gradient goes
  to each window's first maximum (the layer's argmax) only where it is positive (a
  window whose maximum is 0 after ReLU passes nothing back, as ReLU's mask would);
- no gradient for the input images: the first layer's dx is never needed to train.

Anything else (other layers, a pooling with another stride, labels as a column) falls
back to the layers. The gradient arrays are new on every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.layers import Affine, Convolution, Pooling, Relu
from chainrule.losses import SoftmaxWithLoss, as_batch, log_softmax

__all__ = ["FastConvStep"]


class FastConvStep:
    """The loss and gradients of a :class:`~chainrule.networks.SimpleConvNet`."""

    _KINDS = (Convolution, Relu, Pooling, Affine, Relu, Affine)

    def __init__(self, network: Any) -> None:
        self.network = network
        self._col: np.ndarray | None = None  # im2col rows, reused while the shape holds
        self._buffers: dict[str, np.ndarray] = {}  # the large arrays, reused likewise

    def applies(self, x: np.ndarray, t: np.ndarray) -> bool:
        """Whether the network is the book's layers, in order, and the data fits them."""
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
        return t.ndim == 1 or (t.ndim == 2 and t.shape[1] == net.output_size)

    def _im2col(self, x: np.ndarray, conv: Convolution) -> tuple[np.ndarray, int, int]:
        """Rows (N·OH·OW, C·FH·FW + 1) of x's windows, in the layer's order, and a last
        column of ones (so one product adds the bias, and one gives its gradient), in a
        buffer reused from step to step."""
        _, C, FH, FW = conv.W.shape
        pad, stride = conv.pad, conv.stride
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = sliding_window_view(x, (FH, FW), axis=(2, 3))[:, :, ::stride, ::stride]
        N, _, OH, OW = windows.shape[:4]
        K = C * FH * FW
        shape = (N * OH * OW, K + 1)
        if self._col is None or self._col.shape != shape or self._col.dtype != x.dtype:
            self._col = np.empty(shape, x.dtype)
            self._col[:, K] = 1
        target = self._col[:, :K]
        target.shape = (N, OH, OW, C, FH, FW)  # a view of the buffer (raises if it cannot be)
        np.copyto(target, windows.transpose(0, 2, 3, 1, 4, 5))
        return self._col, OH, OW

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An array kept from step to step for ``name``; new when the shape changes."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(shape, dtype)
        return buffer

    def loss_and_gradient(
        self, x: np.ndarray, t: np.ndarray, *, dout: float = 1.0
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The loss and the gradients of ``dout · loss``; call :meth:`applies` first."""
        net = self.network
        conv = net.layers["Conv1"]
        W1, b1, W2, b2, W3, b3 = (net.params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        FN = W1.shape[0]
        N = len(x)

        # Forward: convolution in rows, ReLU in place, pooling by reshape.
        col, OH, OW = self._im2col(x, conv)
        weights = np.concatenate([W1.reshape(FN, -1).T, b1[None, :]])  # (C·FH·FW + 1, FN)
        out = np.matmul(col, weights, out=self._buffer("out", (len(col), FN), x.dtype))
        np.maximum(out, 0, out=out)
        PH, PW = OH // 2, OW // 2
        act = out.reshape(N, OH, OW, FN)[:, : 2 * PH, : 2 * PW]  # rows past the last window drop
        windows = act.reshape(N, PH, 2, PW, 2, FN)
        pooled = np.maximum(windows[:, :, 0, :, 0], windows[:, :, 0, :, 1])  # (N, PH, PW, FN)
        np.maximum(pooled, windows[:, :, 1, :, 0], out=pooled)
        np.maximum(pooled, windows[:, :, 1, :, 1], out=pooled)
        flat = np.ascontiguousarray(pooled.transpose(0, 3, 1, 2)).reshape(N, -1)  # as NCHW
        hidden = flat @ W2
        hidden += b2
        np.maximum(hidden, 0, out=hidden)
        scores = hidden @ W3
        scores += b3

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
        grads = {"W3": hidden.T @ dscores, "b3": dscores.sum(axis=0)}
        dhidden = dscores @ W3.T
        dhidden *= hidden > 0
        grads["W2"], grads["b2"] = flat.T @ dhidden, dhidden.sum(axis=0)
        dflat = (dhidden @ W2.T).reshape(N, FN, PH, PW).transpose(0, 2, 3, 1)

        # Each window's first maximum, in the layer's order (row by row), where positive.
        dwin = self._buffer("dwin", (N, PH, 2, PW, 2, FN), x.dtype)
        positive = pooled > 0  # a zero maximum: ReLU's mask passes nothing back
        hits = np.equal(
            windows, pooled[:, :, None, :, None], out=self._buffer("hits", dwin.shape, bool)
        )
        hits &= positive[:, :, None, :, None]
        if np.count_nonzero(hits) == np.count_nonzero(positive):  # no window holds a tie
            np.multiply(hits, dflat[:, :, None, :, None], out=dwin)
        else:  # a tie: only the first maximum, in the layer's order, takes the gradient
            taken = ~positive
            for i in (0, 1):
                for j in (0, 1):
                    first = hits[:, :, i, :, j] & ~taken
                    np.multiply(dflat, first, out=dwin[:, :, i, :, j])
                    taken |= first
        dact = dwin.reshape(N, 2 * PH, 2 * PW, FN)
        if (2 * PH, 2 * PW) != (OH, OW):  # rows and columns no window covered: no gradient
            dact = np.pad(dact, ((0, 0), (0, OH - 2 * PH), (0, OW - 2 * PW), (0, 0)))
        drows = dact.reshape(N * OH * OW, FN)
        both = drows.T @ col  # (FN, C·FH·FW + 1): dW1, and db1 from the column of ones
        grads["W1"] = np.ascontiguousarray(both[:, :-1]).reshape(W1.shape)
        grads["b1"] = np.ascontiguousarray(both[:, -1])
        order = ("W1", "b1", "W2", "b2", "W3", "b3")
        return loss, {key: grads[key] for key in order}
