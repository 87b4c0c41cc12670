"""Training-step speed: chainrule against PyTorch (CPU) and the book's NumPy code.

A tool, run by hand from a checkout, not in CI (PyTorch is optional: without it, its loop
is left out); it uses chainrule's public API only::

    python bench/bench_train.py                      # all three workloads, a Markdown table
    python bench/bench_train.py --rounds 9 --json bench.json --workloads c
    chainrule bench ...                              # the same, from a checkout

In one process, over several interleaved rounds, each of these trains the same network
from the same initial weights on the same mini-batches (SGD, cross-entropy):

- ``chainrule fit``: chainrule's own training loop, :func:`chainrule.train.fit`, timed from
  its ``on_step`` callback (so exactly what its loop runs each step: gathering the batch,
  the fast step's one-pass SGD update, the loss check and history).
- ``chainrule book loop``: the book's loop around a chainrule network,
  ``x = x_train[idx]; grads = net.gradient(x, t); optimizer.update(net.params, grads)``.
- ``careful NumPy``: a float32 step written by hand with care (no input gradient for the
  first layer, ReLU and softmax in place), the bar a NumPy library's step should reach.
- ``PyTorch``: float32 ``nn.Linear``/``nn.ReLU``/``nn.CrossEntropyLoss``/``optim.SGD``
  with torch's default thread count, ``zero_grad``/``backward``/``step`` and ``loss.item()``.
- ``NumPy textbook``: the book's chapter-5 code as it is printed (float64 weights, new
  temporaries each step, ``out[mask] = 0``, ``np.dot``, ``params[key] -= lr * grads[key]``).

Every step of every loop takes its batch from the same float32 training set (60,000 random
images of MNIST's shape and range, labels 0-9; for the convolutional network (d), the
embedded mnist-5k's real digits, repeated) with the same indices (the first epoch of
``fit``'s shuffle), so the loops race on equal terms; before timing, each runs a few steps
from the initial weights and their losses are compared.

Workloads: (a) 784-50-10, batch 100; (b) 784-256-256-10, batch 128; (c) 784-1024-1024-10,
batch 256. FLOPs per step are counted as ``6 · batch · Σ fan_in·fan_out`` (forward,
dW and dX of every layer); chainrule and PyTorch skip the first layer's dX, so they execute
``2 · batch · 784 · hidden`` fewer. The GEMM rate is a large float32 ``np.matmul`` timed in
the same process, once per round; "% of GEMM rate" divides a loop's nominal GFLOP/s by the
best of them.

Medians over rounds, never single timings: the machine may be shared. Between two loops
the process sleeps (``--settle``), because BLAS and OpenMP threads keep spinning for a
while after a call and slow whatever runs next on a small machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import MultiLayerNet
from chainrule.data import load_mnist
from chainrule.networks import SimpleConvNet
from chainrule.optim import SGD
from chainrule.train import epoch_batches, fit

SEED = 0
LR = 0.01
TRAIN_SIZE = 60_000  # MNIST's size: the timed steps of a round stay inside one epoch
CHECK_STEPS = 5


@dataclass(frozen=True)
class Workload:
    key: str
    sizes: tuple[int, ...]
    batch: int
    steps: int  # timed steps per loop per round, by default
    conv: bool = False  # SimpleConvNet (1×28×28, conv 30 5×5, pool 2×2, 100, 10)

    @property
    def label(self) -> str:
        if self.conv:
            return f"({self.key}) SimpleConvNet conv30·5×5-pool-100-10, batch {self.batch}"
        return f"({self.key}) {'-'.join(map(str, self.sizes))}, batch {self.batch}"

    @property
    def flops(self) -> int:
        """Nominal FLOPs of one step: 6 · batch · Σ fan_in · fan_out (for the convnet, the
        convolution counts as a 25 → 30 layer at each of its 24·24 positions)."""
        if self.conv:
            return 6 * self.batch * (CONV_POSITIONS * 25 * 30 + 4320 * 100 + 100 * 10)
        return 6 * self.batch * sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))


WORKLOADS = {
    "a": Workload("a", (784, 50, 10), 100, 100),
    "b": Workload("b", (784, 256, 256, 10), 128, 30),
    "c": Workload("c", (784, 1024, 1024, 10), 256, 6),
    "d": Workload("d", (784, 100, 10), 100, 10, conv=True),
}
CONV_POSITIONS = 24 * 24


# --------------------------------------------------------------------------------------
# The book's code, as chapter 5 prints it (common/layers.py, common/functions.py, SGD)


class BookAffine:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b
        self.x = self.dW = self.db = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx


class BookRelu:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout[self.mask] = 0
        return dout


def book_softmax(x: np.ndarray) -> np.ndarray:
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def book_cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class BookSoftmaxWithLoss:
    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        self.t = t
        self.y = book_softmax(x)
        self.loss = book_cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout: float = 1) -> np.ndarray:
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


class BookNet:
    """The book's MultiLayerNet (ReLU, no weight decay) on float64 weights."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = {key: value.astype(np.float64) for key, value in params.items()}
        n = len(params) // 2
        self.layers: dict[str, Any] = {}
        for i in range(1, n + 1):
            self.layers[f"Affine{i}"] = BookAffine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i < n:
                self.layers[f"Relu{i}"] = BookRelu()
        self.last_layer = BookSoftmaxWithLoss()

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        for layer in self.layers.values():
            x = layer.forward(x)
        return self.last_layer.forward(x, t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, len(self.params) // 2 + 1):
            grads[f"W{i}"] = self.layers[f"Affine{i}"].dW
            grads[f"b{i}"] = self.layers[f"Affine{i}"].db
        return grads

    def loss_and_gradient(self, x: np.ndarray, t: np.ndarray) -> tuple[float, dict]:
        grads = self.gradient(x, t)
        return self.last_layer.loss, grads


class BookSGD:
    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key in params:
            params[key] -= self.lr * grads[key]


def book_im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w))
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def book_col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]
    return img[:, :, pad : H + pad, pad : W + pad]


class BookConvolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        FN, _, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = 1 + int((H + 2 * self.pad - FH) / self.stride)
        out_w = 1 + int((W + 2 * self.pad - FW) / self.stride)
        col = book_im2col(x, FH, FW, self.stride, self.pad)
        col_W = self.W.reshape(FN, -1).T
        out = np.dot(col, col_W) + self.b
        out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)
        self.x, self.col, self.col_W = x, col, col_W
        return out

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(FN, C, FH, FW)
        dcol = np.dot(dout, self.col_W.T)
        return book_col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class BookPooling:
    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = int(1 + (H - self.pool_h) / self.stride)
        out_w = int(1 + (W - self.pool_w) / self.stride)
        col = book_im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)
        self.arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
        self.x = x
        return out

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        pool_size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, pool_size))
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dmax = dmax.reshape((*dout.shape, pool_size))
        dcol = dmax.reshape(dmax.shape[0] * dmax.shape[1] * dmax.shape[2], -1)
        return book_col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class BookFlatAffine(BookAffine):
    """The book's Affine, which flattens 4-d input and reshapes dx back."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.original_x_shape = x.shape
        return super().forward(x.reshape(x.shape[0], -1))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return super().backward(dout).reshape(*self.original_x_shape)


class BookConvNet(BookNet):
    """The book's SimpleConvNet (ch07/simple_convnet.py) on float64 weights."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = {key: value.astype(np.float64) for key, value in params.items()}
        p = self.params
        self.layers = {
            "Conv1": BookConvolution(p["W1"], p["b1"]),
            "Relu1": BookRelu(),
            "Pool1": BookPooling(2, 2, stride=2),
            "Affine1": BookFlatAffine(p["W2"], p["b2"]),
            "Relu2": BookRelu(),
            "Affine2": BookAffine(p["W3"], p["b3"]),
        }
        self.last_layer = BookSoftmaxWithLoss()

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        names = {"1": "Conv1", "2": "Affine1", "3": "Affine2"}
        grads = {}
        for i, name in names.items():
            grads[f"W{i}"], grads[f"b{i}"] = self.layers[name].dW, self.layers[name].db
        return grads


# --------------------------------------------------------------------------------------
# The loops. ``run(steps)`` trains ``steps`` steps and returns the time.perf_counter()
# reading taken after each step and the loss of each step; the first step's reading only
# starts the clock, so a round times ``steps - 1`` steps.


@dataclass
class Data:
    x: np.ndarray  # (TRAIN_SIZE, 784) float32
    t: np.ndarray  # (TRAIN_SIZE,) int64
    batches: np.ndarray  # (steps, batch) indices: the first epoch of fit's shuffle


def _chainrule_net(params: dict[str, np.ndarray], w: Workload) -> Any:
    if w.conv:
        conv = SimpleConvNet(dtype=np.float32, seed=SEED)
        for key, value in conv.params.items():
            value[...] = params[key]
        return conv
    net = MultiLayerNet(w.sizes[0], list(w.sizes[1:-1]), w.sizes[-1], dtype=np.float32, seed=SEED)
    net.load_params(params)
    return net


def fit_loop(
    fit_function: Callable, net: Any, optimizer: Any, w: Workload, data: Data, **options: Any
) -> Callable:
    """A loop that trains with ``fit_function`` (chainrule's ``fit``, or another version's),
    timed from its ``on_step`` callback."""
    takes_callbacks = "callbacks" in inspect.signature(fit_function).parameters

    def run(steps: int) -> tuple[list[float], list[float]]:
        stamps: list[float] = []
        clock = _StepClock(stamps)
        # An older fit (bench_ab.py's) took on_step= itself, before callbacks=
        timing = {"callbacks": [clock]} if takes_callbacks else {"on_step": clock.on_step}
        history = fit_function(
            net,
            optimizer,
            data.x,
            data.t,
            batch_size=w.batch,
            iters=steps,
            seed=SEED,
            evaluate_sample_num=w.batch,  # the one evaluation, after the last step, is cheap
            **timing,
            **options,
        )
        return stamps, history.losses

    return run


class _StepClock:
    """A fit callback (any version's: it needs no base class) that notes when each step
    ends."""

    def __init__(self, stamps: list[float]) -> None:
        self.stamps = stamps

    def on_step(self, step: int, loss: float) -> None:
        self.stamps.append(time.perf_counter())


def chainrule_fit(params: dict[str, np.ndarray], w: Workload, data: Data) -> Callable:
    return fit_loop(fit, _chainrule_net(params, w), SGD(LR), w, data)


def _book_loop(net: Any, optimizer: Any, data: Data) -> Callable:
    """The book's training loop around ``net`` and ``optimizer``."""

    def run(steps: int) -> tuple[list[float], list[float]]:
        stamps, losses = [], []
        for batch_mask in data.batches[:steps]:
            loss, grads = net.loss_and_gradient(data.x[batch_mask], data.t[batch_mask])
            optimizer.update(net.params, grads)
            losses.append(float(loss))
            stamps.append(time.perf_counter())
        return stamps, losses

    return run


def chainrule_book_loop(params: dict[str, np.ndarray], w: Workload, data: Data) -> Callable:
    return _book_loop(_chainrule_net(params, w), SGD(LR), data)


def careful_numpy(params: dict[str, np.ndarray], w: Workload, data: Data) -> Callable:
    """A float32 training step written by hand with care: what a NumPy library should reach."""
    weights = [params[f"W{i}"].copy() for i in range(1, len(w.sizes))]
    biases = [params[f"b{i}"].copy() for i in range(1, len(w.sizes))]
    rows = np.arange(w.batch)

    def run(steps: int) -> tuple[list[float], list[float]]:
        stamps, losses = [], []
        for idx in data.batches[:steps]:
            signals, t = [data.x[idx]], data.t[idx]
            for i, (W, b) in enumerate(zip(weights, biases)):
                z = signals[-1] @ W
                z += b
                if i < len(weights) - 1:
                    np.maximum(z, 0, out=z)
                signals.append(z)
            y = signals.pop()  # softmax in place
            y -= y.max(axis=1, keepdims=True)
            np.exp(y, out=y)
            y /= y.sum(axis=1, keepdims=True)
            losses.append(float(-np.log(y[rows, t]).mean()))
            y[rows, t] -= 1
            y *= LR / w.batch  # the learning rate rides on the gradient
            for i in range(len(weights) - 1, -1, -1):
                dW, db = signals[i].T @ y, y.sum(axis=0)
                if i > 0:
                    y = y @ weights[i].T
                    y *= signals[i] > 0
                weights[i] -= dW
                biases[i] -= db
            stamps.append(time.perf_counter())
        return stamps, losses

    return run


def numpy_textbook(params: dict[str, np.ndarray], w: Workload, data: Data) -> Callable:
    return _book_loop(BookConvNet(params) if w.conv else BookNet(params), BookSGD(LR), data)


def _torch_convnet(params: dict[str, np.ndarray]) -> Any:
    import torch

    conv, hidden, last = (
        torch.nn.Conv2d(1, 30, 5),
        torch.nn.Linear(4320, 100),
        torch.nn.Linear(100, 10),
    )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(params["W1"]))
        conv.bias.copy_(torch.from_numpy(params["b1"]))
        for layer, i in ((hidden, 2), (last, 3)):
            layer.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
            layer.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    pool = torch.nn.MaxPool2d(2, 2)
    return torch.nn.Sequential(
        conv, torch.nn.ReLU(), pool, torch.nn.Flatten(), hidden, torch.nn.ReLU(), last
    )


def pytorch(params: dict[str, np.ndarray], w: Workload, data: Data) -> Callable:
    import torch

    if w.conv:
        model = _torch_convnet(params)
    else:
        layers: list[Any] = []
        for i, (fan_in, fan_out) in enumerate(zip(w.sizes, w.sizes[1:]), start=1):
            linear = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
                linear.bias.copy_(torch.from_numpy(params[f"b{i}"]))
            layers += [linear, torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x_train, t_train = torch.from_numpy(data.x), torch.from_numpy(data.t)
    batches = [torch.from_numpy(idx) for idx in data.batches]

    def run(steps: int) -> tuple[list[float], list[float]]:
        stamps, losses = [], []
        for idx in batches[:steps]:
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), t_train[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            stamps.append(time.perf_counter())
        return stamps, losses

    return run


LOOPS: dict[str, Callable] = {
    "chainrule fit": chainrule_fit,
    "chainrule book loop": chainrule_book_loop,
    "careful NumPy": careful_numpy,
    "PyTorch": pytorch,
    "NumPy textbook (float64)": numpy_textbook,
}
MLP_ONLY_LOOPS = ("careful NumPy",)  # written for the fully connected networks only


# --------------------------------------------------------------------------------------
# The engine's networks against PyTorch: ``grads = net.gradient(x, t)`` then
# ``Adam.update``, against torch's zero_grad / forward / backward / Adam.step, batch 100.
# Each framework runs in a process of its own (threads one library leaves spinning slow
# the next in a shared process), the two alternating, and each process reports the
# median of its steps.

ENGINE_WORKLOADS = {
    "deep32": "DeepConvNet, float32",
    "deep64": "DeepConvNet, float64",
    "simple": "SimpleConvNet, float32",
    "extend": "MultiLayerNetExtend 784-100×4-10, batch norm, dropout 0.2, float32",
    "sequential": "Sequential conv 16 3×3 pad 1, ReLU, pool 2; conv 32 3×3 pad 1, ReLU, "
    "pool 2; Affine 100, batch norm, ReLU, dropout 0.3; Affine 10, float32",
}


def _engine_network(key: str) -> tuple[Any, np.ndarray]:
    """A chainrule network of the workload, and a batch of inputs for it."""
    from chainrule.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu
    from chainrule.networks import DeepConvNet, MultiLayerNetExtend, Sequential

    rng = np.random.default_rng(SEED)
    images = rng.random((100, 1, 28, 28))
    if key.startswith("deep"):
        dtype = np.float32 if key == "deep32" else np.float64
        return DeepConvNet(dtype=dtype, seed=SEED), images.astype(dtype)
    if key == "simple":
        return SimpleConvNet(dtype=np.float32, seed=SEED), images.astype(np.float32)
    if key == "extend":
        net = MultiLayerNetExtend(
            784, [100] * 4, 10, use_batchnorm=True, use_dropout=True, dropout_ration=0.2,
            dtype=np.float32, seed=SEED,
        )  # fmt: skip
        return net, images.reshape(100, 784).astype(np.float32)

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32)

    zeros = lambda n: np.zeros(n, np.float32)  # noqa: E731
    layers = [
        Convolution(normal(16, 1, 3, 3), zeros(16), 1, 1), Relu(), Pooling(2, 2, 2),
        Convolution(normal(32, 16, 3, 3), zeros(32), 1, 1), Relu(), Pooling(2, 2, 2),
        Affine(normal(32 * 7 * 7, 100).reshape(1568, 100), zeros(100)),
        BatchNormalization(np.ones(100, np.float32), zeros(100)), Relu(), Dropout(0.3, seed=SEED),
        Affine(normal(100, 10), zeros(10)),
    ]  # fmt: skip
    return Sequential(layers), images.astype(np.float32)


def _torch_network(key: str) -> tuple[Any, Any]:
    import torch

    nn = torch.nn
    dtype = torch.float64 if key == "deep64" else torch.float32
    torch.manual_seed(SEED)
    if key.startswith("deep"):
        layers: list[Any] = []
        channels = 1
        for i, (filters, pad) in enumerate(((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))):
            layers += [nn.Conv2d(channels, filters, 3, padding=pad), nn.ReLU()]
            layers += [nn.MaxPool2d(2)] if i % 2 else []
            channels = filters
        layers += [nn.Flatten(), nn.Linear(1024, 50), nn.ReLU(), nn.Dropout(0.5)]
        layers += [nn.Linear(50, 10), nn.Dropout(0.5)]
    elif key == "simple":
        layers = [nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        layers += [nn.Linear(4320, 100), nn.ReLU(), nn.Linear(100, 10)]
    elif key == "extend":
        layers, width = [nn.Flatten()], 784
        for _ in range(4):
            layers += [nn.Linear(width, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Dropout(0.2)]
            width = 100
        layers.append(nn.Linear(100, 10))
    else:
        layers = [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        layers += [nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        layers += [nn.Linear(1568, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Dropout(0.3)]
        layers.append(nn.Linear(100, 10))
    model = nn.Sequential(*layers).to(dtype)
    return model, torch.rand((100, 1, 28, 28), dtype=dtype)


def engine_child(key: str, framework: str, steps: int) -> dict[str, float]:
    """Time ``steps`` steps of one framework on one workload, in this process: the median
    seconds a step. chainrule's two steps (``gradient()``, which returns copies, and the
    engine's buffers, which fit uses) alternate step by step; PyTorch runs with its
    default thread count, then with one thread."""
    labels = np.arange(100) % 10
    if framework == "PyTorch":
        import torch

        model, x = _torch_network(key)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
        loss_fn, t = torch.nn.CrossEntropyLoss(), torch.from_numpy(labels)
        threads = torch.get_num_threads()

        def torch_step(count: int) -> None:
            if torch.get_num_threads() != count:
                torch.set_num_threads(count)
            optimizer.zero_grad()
            loss = loss_fn(model(x), t)
            loss.backward()
            optimizer.step()
            loss.item()

        steps_by_name = {
            f"PyTorch ({threads} threads)": lambda: torch_step(threads),
            "PyTorch (1 thread)": lambda: torch_step(1),
        }
    else:
        from chainrule.optim import Adam

        net, x = _engine_network(key)
        optimizer = Adam(lr=0.001)
        steps_by_name = {
            "chainrule gradient()": lambda: optimizer.update(net.params, net.gradient(x, labels)),
            "chainrule, the engine's buffers": lambda: optimizer.update(
                net.params, net.fast_step.loss_and_gradient(x, labels)[1]
            ),
        }
    # PyTorch's two one after the other: changing its thread count costs a step's time.
    blocks = (
        [steps_by_name] if framework == "chainrule" else [{k: v} for k, v in steps_by_name.items()]
    )
    times: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for block in blocks:
        for i in range(steps + 3):  # three warm-up steps each: buffers, the tuner's first trial
            for name, step in block.items():
                seconds = _time(step)
                if i >= 3:
                    times[name].append(seconds)
    return {name: statistics.median(seen) for name, seen in times.items()}


def engine_bench(keys: list[str], rounds: int, steps: int) -> str:
    """Alternate a process per framework ``rounds`` times a workload; a Markdown table."""
    import subprocess

    rows = []
    for key in keys:
        seen: dict[str, list[float]] = {}
        for r in range(rounds):
            for framework in ("chainrule", "PyTorch")[:: 1 if r % 2 == 0 else -1]:
                command = [sys.executable, __file__, "--engine-child", key, framework]
                output = subprocess.run(
                    [*command, "--steps", str(steps)], check=True, capture_output=True, text=True
                ).stdout
                for name, seconds in json.loads(output).items():
                    seen.setdefault(name, []).append(seconds)
        torch_s = statistics.median(next(v for k, v in seen.items() if "threads)" in k))
        for name, times in seen.items():
            median = statistics.median(times)
            ratio = torch_s / median
            rows.append(f"| {ENGINE_WORKLOADS[key]} | {name} | {median * 1e3:.1f} | {ratio:.2f}× |")
        print(f"workload {key} done", file=sys.stderr)
    head = [
        f"CPU: {_cpu_model()}, {os.cpu_count()} cores; medians of {rounds} processes a "
        f"framework, {steps} steps each, batch 100, Adam",
        "",
        "| workload | step | ms a step | PyTorch's time (its default threads) / this |",
        "|---|---|---:|---:|",
    ]
    return "\n".join(head + rows)


# --------------------------------------------------------------------------------------
# Measurement


def gemm_rate(n: int = 2048) -> float:
    """GFLOP/s of an n×n float32 np.matmul: the best of three, after one warm-up."""
    rng = np.random.default_rng(1)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    best = min(_time(lambda: np.matmul(a, b, out=out)) for _ in range(3))
    return 2 * n**3 / best / 1e9


def torch_gemm_rate(n: int = 2048) -> float | None:
    """The same for torch.mm (MKL on x86), or None without PyTorch: where the BLAS decides
    (the large networks), this ratio is the one to compare the loops' ratios with."""
    try:
        import torch
    except ImportError:
        return None
    a, b = torch.rand(n, n), torch.rand(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = min(_time(lambda: torch.mm(a, b, out=out)) for _ in range(3))
    return 2 * n**3 / best / 1e9


def _time(f: Callable[[], Any]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "env": {
            k: os.environ.get(k)
            for k in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
            )
        },
    }
    try:
        from threadpoolctl import threadpool_info

        np.ones((4, 4), np.float32) @ np.ones((4, 4), np.float32)  # load BLAS
        info["threadpools"] = [
            {
                k: p.get(k)
                for k in ("internal_api", "version", "architecture", "num_threads", "prefix")
            }
            for p in threadpool_info()
        ]
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def make_data(w: Workload, steps: int, rng: np.random.Generator) -> Data:
    if w.conv:
        # Real digits (the embedded mnist-5k, repeated): their blank background makes
        # equal values in many pooling windows, which random images never have, and the
        # fast step's pooling must handle those ties at full speed.
        (digits, labels), _ = load_mnist(flatten=False)
        repeat = np.arange(TRAIN_SIZE) % len(digits)
        return _data(w, digits[repeat].astype(np.float32), labels[repeat], steps)
    x = rng.random((TRAIN_SIZE, w.sizes[0]), dtype=np.float32)  # MNIST's shape and range
    return _data(w, x, rng.integers(0, w.sizes[-1], TRAIN_SIZE), steps)


def _data(w: Workload, x: np.ndarray, t: np.ndarray, steps: int) -> Data:
    per_epoch = TRAIN_SIZE // w.batch
    batches = epoch_batches(TRAIN_SIZE, w.batch, per_epoch, SEED, 0, "shuffle")[:steps]
    return Data(x, t, batches)


@dataclass
class Result:
    workload: Workload
    # Per loop, per round: the mean seconds per step of that round (its throughput) and
    # the median of its single steps (robust to a hiccup of the machine mid-round).
    seconds: dict[str, list[float]] = field(default_factory=dict)
    step_medians: dict[str, list[float]] = field(default_factory=dict)
    gemm: list[float] = field(default_factory=list)  # GFLOP/s, once per round
    torch_gemm: list[float] = field(default_factory=list)  # the same for torch.mm
    check: dict[str, list[float]] = field(default_factory=dict)  # losses of the first steps


def bench(w: Workload, loops: list[str], rounds: int, steps: int, settle: float) -> Result:
    rng = np.random.default_rng(SEED)
    data = make_data(w, max(steps + 1, CHECK_STEPS), rng)
    if w.conv:  # He initialisation, so that a few SGD steps move the loss
        params = SimpleConvNet(weight_init_std="he", dtype=np.float32, seed=SEED).params
        loops = [name for name in loops if name not in MLP_ONLY_LOOPS]
    else:
        params = MultiLayerNet(w.sizes[0], list(w.sizes[1:-1]), w.sizes[-1], seed=SEED).params
    result = Result(w)
    # Equal footing: from the initial weights, a few steps of each loop on the same batches.
    for name in loops:
        time.sleep(settle)
        result.check[name] = LOOPS[name](params, w, data)(CHECK_STEPS)[1]
    runners = {name: LOOPS[name](params, w, data) for name in loops}
    result.seconds = {name: [] for name in loops}
    result.step_medians = {name: [] for name in loops}
    for r in range(rounds):
        order = loops[r % len(loops) :] + loops[: r % len(loops)]  # no loop always goes first
        for name in order:
            time.sleep(settle)
            stamps, _ = runners[name](steps + 1)
            durations = np.diff(stamps)
            result.seconds[name].append(float(durations.mean()))
            result.step_medians[name].append(float(np.median(durations)))
        time.sleep(settle)
        result.gemm.append(gemm_rate())
        if "PyTorch" in loops:
            time.sleep(settle)
            result.torch_gemm.append(torch_gemm_rate())
    return result


# --------------------------------------------------------------------------------------
# Report


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return float(q1), float(q2), float(q3)


def summarize(result: Result) -> list[dict[str, Any]]:
    w = result.workload
    peak = max(result.gemm)
    torch_times = result.seconds.get("PyTorch")
    rows = []
    for name, times in result.seconds.items():
        median, best = statistics.median(times), min(times)
        row = {
            "workload": w.label,
            "loop": name,
            "median_ms": median * 1e3,
            "best_ms": best * 1e3,
            "median_step_ms": statistics.median(result.step_medians[name]) * 1e3,
            "samples_per_s": w.batch / median,
            "gflops": w.flops / median / 1e9,
            "gemm_fraction_median": w.flops / median / 1e9 / peak,
            "gemm_fraction_best": w.flops / best / 1e9 / peak,
        }
        if torch_times:
            # Paired by round: the throughput ratio of two loops run a second apart.
            ratios = [t / s for s, t in zip(times, torch_times)]
            q1, q2, q3 = _quartiles(ratios)
            row.update(vs_pytorch_median=q2, vs_pytorch_q1=q1, vs_pytorch_q3=q3)
            row["vs_pytorch_min"], row["vs_pytorch_max"] = min(ratios), max(ratios)
        rows.append(row)
    return rows


def reference_loop(result: Result) -> str:
    """The loop the others' losses are compared with: PyTorch's, else the first one's."""
    return "PyTorch" if "PyTorch" in result.check else next(iter(result.check))


def loss_agreement(result: Result) -> dict[str, float]:
    """Max relative difference from the reference loop's losses over the check steps."""
    reference = result.check[reference_loop(result)]
    return {
        name: max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
        for name, losses in result.check.items()
    }


def markdown(results: list[Result], env: dict[str, Any], rounds: int, steps: str) -> str:
    lines = [
        f"{rounds} interleaved rounds of {steps} timed steps per loop; ms/step is each "
        "round's mean (its throughput), median over rounds; × PyTorch is the per-round "
        "throughput ratio, median [quartiles].",
        "",
        "| workload | loop | median ms/step | best round ms/step | samples/s | × PyTorch "
        "| GFLOP/s | % of GEMM rate (median / best round) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for row in summarize(result):
            ratio = (
                f"{row['vs_pytorch_median']:.2f}× [{row['vs_pytorch_q1']:.2f}–"
                f"{row['vs_pytorch_q3']:.2f}]"
                if "vs_pytorch_median" in row
                else "–"
            )
            lines.append(
                f"| {row['workload']} | {row['loop']} | {row['median_ms']:.3f} | "
                f"{row['best_ms']:.3f} | {row['samples_per_s']:,.0f} | {ratio} | "
                f"{row['gflops']:.1f} | {100 * row['gemm_fraction_median']:.0f}% / "
                f"{100 * row['gemm_fraction_best']:.0f}% |"
            )
    lines.append("")
    for result in results:
        w = result.workload
        gemm = result.gemm
        agreement = ", ".join(f"{k} {v:.1e}" for k, v in loss_agreement(result).items())
        torch_gemm = (
            f" (torch.mm {max(result.torch_gemm):.0f} best, "
            f"{statistics.median(result.torch_gemm):.0f} median)"
            if result.torch_gemm
            else ""
        )
        lines.append(
            f"- {w.label}: {w.flops / 1e6:.1f} MFLOP/step nominal; float32 GEMM "
            f"(2048³ np.matmul) {max(gemm):.0f} GFLOP/s best, {statistics.median(gemm):.0f} "
            f"median{torch_gemm}; losses of the first {CHECK_STEPS} steps from the same "
            f"weights, max relative difference from {reference_loop(result)}'s: {agreement}"
        )
    lines.append(f"- environment: {json.dumps(env)}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument(
        "--workloads", default="abc", help="any of a, b, c, d (d: SimpleConvNet; default: abc)"
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per loop per round (default: 100 for a, 30 for b, 6 for c)",
    )
    parser.add_argument("--loops", default=",".join(LOOPS), help="comma-separated loop names")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds between loops")
    parser.add_argument("--json", metavar="PATH", help="also write every timing as JSON")
    parser.add_argument(
        "--engine",
        metavar="KEYS",
        help="instead: the engine's networks against PyTorch, Adam, a process each "
        f"(comma-separated, from {', '.join(ENGINE_WORKLOADS)})",
    )
    parser.add_argument(
        "--engine-child", nargs=2, metavar=("KEY", "FRAMEWORK"), help=argparse.SUPPRESS
    )


def main(
    argv: list[str] | None = None,
    prog: str | None = None,
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> int:
    """Parse ``argv`` and run; ``prog`` and ``parser_class`` let a command line host it."""
    parser = parser_class(prog=prog, description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv), parser)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the workloads in ``args``; print the table (and write JSON); return 0."""
    if args.engine_child:
        print(json.dumps(engine_child(*args.engine_child, args.steps or 10)))
        return 0
    if args.engine:
        keys = args.engine.split(",")
        if any(key not in ENGINE_WORKLOADS for key in keys):
            parser.error(f"--engine takes {', '.join(ENGINE_WORKLOADS)}")
        print(engine_bench(keys, args.rounds, args.steps or 10))
        return 0
    unknown_workloads = [key for key in args.workloads if key not in WORKLOADS]
    if unknown_workloads or args.rounds < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--workloads takes letters from abcd; --rounds and --steps must be >= 1")
    for key in args.workloads:
        most = TRAIN_SIZE // WORKLOADS[key].batch - 1
        if (args.steps or 0) > most:
            parser.error(f"--steps {args.steps}: at most {most} for workload {key}")
    loops = [name.strip() for name in args.loops.split(",")]
    unknown = [name for name in loops if name not in LOOPS]
    if unknown:
        parser.error(f"unknown loops {unknown}; choose from {list(LOOPS)}")
    if "PyTorch" in loops:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not installed: its loop is left out", file=sys.stderr)
            loops.remove("PyTorch")
    env = environment()
    results = []
    for key in args.workloads:
        w = WORKLOADS[key]
        results.append(bench(w, loops, args.rounds, args.steps or w.steps, args.settle))
        print(f"workload {w.label} done", file=sys.stderr)
    steps = (
        str(args.steps) if args.steps else "/".join(str(WORKLOADS[k].steps) for k in args.workloads)
    )
    print(markdown(results, env, args.rounds, steps))
    if args.json:
        with Path(args.json).open("w", encoding="utf-8") as f:
            json.dump(
                {
                    "environment": env,
                    "summary": [row for r in results for row in summarize(r)],
                    "loss_agreement": {r.workload.key: loss_agreement(r) for r in results},
                    "check_losses": {r.workload.key: r.check for r in results},
                    "seconds_per_step_round_means": {r.workload.key: r.seconds for r in results},
                    "seconds_per_step_round_medians": {
                        r.workload.key: r.step_medians for r in results
                    },
                    "gemm_gflops": {r.workload.key: r.gemm for r in results},
                    "torch_gemm_gflops": {r.workload.key: r.torch_gemm for r in results},
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
