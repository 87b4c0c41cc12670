"""The nodes of a computational graph, as "Deep Learning from Scratch" writes them: chapter
5's, chapter 6's Dropout and BatchNormalization, chapter 7's Convolution and Pooling.

Every node keeps one contract:

- ``forward(*inputs)`` computes the output and saves what ``backward`` needs, in the
  book's attribute names (``x``, ``y``, ``mask``, ``out``, ``W``, ``b``).
- ``backward(dout)`` takes the upstream gradient ``dL/d(output)`` and returns new arrays,
  the downstream gradients ``dL/d(input)``: one for a one-input node, a tuple in the order
  of ``forward``'s arguments for a node with several. Parameter gradients are attributes
  (``Affine.dW``, ``Affine.db``).
- No ``backward`` writes into ``dout`` or into what it saved: one gradient may be shared
  by several nodes (an Add node passes the same array to both of its inputs).
- Dropout's and BatchNormalization's ``forward(x, train_flg=True)`` also take the book's
  flag, True while training; ``backward`` differentiates the last forward with it True.

Every node also says how it is shown, for the chain-rule trace (:mod:`chainrule.explain`)
and the pictures (:mod:`chainrule.viz`), which ask the node and never test its type
(:class:`chainrule.graph.Node` reads these, with a default for each optional one):

- ``symbol``: its mark. One character (``×``, ``+``) is an operator: the trace writes it
  between the inputs (before a single one), a picture draws it in a circle. Else a name
  (``ReLU``): the trace writes ``ReLU(x)`` (the class name where the symbol has spaces,
  as the two-line ``Softmax with Loss``), a picture draws it in an ellipse.
- ``formula``: its forward rule in its own letters (``z = x · y``). The left side is the
  output's letter; ``L`` marks a loss, which the trace writes ``∂L/∂…`` and a picture
  ends in an ``L``.
- ``local``: for each input, its local derivative ∂out/∂input (``("y", "x")`` for Mul).
- ``local_values()`` (optional): the same derivatives as numbers, from what forward saved.
- ``param_rules`` (nodes with parameters): ``(attribute, rule)`` of each parameter
  gradient. The gradient of parameter ``P`` is ``dP``, as the book names them (``dW``,
  ``db``; ``dgamma``, ``dbeta``); a picture shows the shape of each ``P`` under the name.
  A rule's words, between spaces, name the formula's letters, the parameters and
  ``dout`` (``ᵀ`` transposes), and the trace writes each one's shape after it.
- ``input_letters`` (optional): the inputs' letters in the formula, where they are not
  forward's argument names (Affine's ``X``).
- ``name`` (optional): what errors and the pictures call the node (``Affine1``).

A new kind of node needs nothing else: the trace and the pictures format it from these.

The training loop does not run these classes: :mod:`chainrule.engine` computes the same
numbers with reused buffers, and the tests hold the two equal.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError, ShapeError
from chainrule.losses import SoftmaxWithLoss
from chainrule.util import add_windows, col2im, im2col, image_windows
from chainrule.validation import (
    affine_params,
    batch_rows,
    batchnorm_params,
    broadcast_shape,
    check_dout,
    check_flag,
    check_real,
    check_trained,
    conv_params,
    feature_rows,
    image_batch,
    window_count,
    window_output,
)

__all__ = [
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "MulLayer",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "im2col",
    "sigmoid",
]


def sum_to_shape(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting expanded, so it gets ``shape`` back.

    If ``x`` of shape ``(3,)`` was added to ``y`` of shape ``(2, 3)``, each element of ``x``
    reached two outputs, so its gradient is the sum of their two upstream gradients.
    """
    if np.shape(grad) == shape:
        return grad
    grad = np.asarray(grad)
    leading = grad.ndim - len(shape)
    stretched = tuple(
        leading + axis
        for axis, size in enumerate(shape)
        if size == 1 and grad.shape[leading + axis] != 1
    )
    return grad.sum(axis=tuple(range(leading)) + stretched, keepdims=True).reshape(shape)


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, finite and accurate for any input."""
    # exp(-log(1 + exp(-x))): logaddexp never overflows, and unlike the tanh form it keeps
    # full relative precision for tiny outputs (x << 0), so it agrees with PyTorch to 1e-15.
    x = np.asarray(x, dtype=np.result_type(x, 0.0))  # ints and bools compute in float
    return np.exp(-np.logaddexp(0.0, -x))


class MulLayer:
    """Multiply node ``z = x * y`` (element-wise, broadcasting allowed), on numbers or arrays.

    Backward swaps the inputs: ``dx = dout * y``, ``dy = dout * x``; so forward keeps both.
    """

    symbol, formula, local = "×", "z = x · y", ("y", "x")

    def __init__(self) -> None:
        self.x = None
        self.y = None
        self.out_shape = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = broadcast_shape(self, x, y)
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        check_dout(self, dout, self.out_shape)
        dx = sum_to_shape(dout * self.y, np.shape(self.x))
        dy = sum_to_shape(dout * self.x, np.shape(self.y))
        return dx, dy

    def local_values(self) -> tuple[Any, Any]:
        return self.y, self.x


class AddLayer:
    """Add node ``z = x + y`` (element-wise, broadcasting allowed), on numbers or arrays.

    Backward passes ``dout`` on unchanged to both inputs (``∂z/∂x = ∂z/∂y = 1``).
    """

    symbol, formula, local = "+", "z = x + y", ("1", "1")

    def __init__(self) -> None:
        self.x_shape = None
        self.y_shape = None
        self.out_shape = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = broadcast_shape(self, x, y)
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        check_dout(self, dout, self.out_shape)
        # Where broadcasting made an input smaller, its gradient is summed back to its shape.
        return sum_to_shape(dout, self.x_shape), sum_to_shape(dout, self.y_shape)

    def local_values(self) -> tuple[int, int]:
        return 1, 1


class Relu:
    """ReLU node ``y = max(x, 0)``; ``dx = dout`` where ``x > 0``, else 0.

    ``mask`` marks where the input was ``<= 0``, as in the book (the gradient check reads it
    to find inputs that sit on the kink at 0).
    """

    symbol, formula, local = "ReLU", "y = max(x, 0)", ("1[x > 0]",)

    def __init__(self) -> None:
        self.mask = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.mask = np.asarray(x) <= 0
        return np.maximum(x, 0)

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.mask)
        # A new array, where the book writes `dout[mask] = 0`: editing dout in place would
        # corrupt a gradient that another node shares. The product is the fast way, but
        # inf · 0 is NaN, so a non-finite dout takes the book's way.
        if np.isfinite(dout).all():
            return dout * ~self.mask
        dx = np.array(dout, copy=True)
        dx[self.mask] = 0
        return dx

    def local_values(self) -> tuple[np.ndarray]:
        return (~self.mask,)


class Sigmoid:
    """Sigmoid node ``y = 1 / (1 + exp(-x))``; ``dx = dout * (1 - y) * y``.

    Backward needs only the output, so forward keeps ``out``, not ``x``.
    """

    symbol, formula, local = "sigmoid", "y = 1 / (1 + exp(−x))", ("y(1 − y)",)

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.out)
        return dout * (1.0 - self.out) * self.out

    def local_values(self) -> tuple[Any]:
        return (self.out * (1.0 - self.out),)


class Affine:
    """Fully connected node ``Y = X·W + b``, W (in, out) and b (out,).

    ``x`` (N, ...) is flattened to (N, in), and one sample (in,) is taken as a batch of one.
    Backward returns ``dX = dY·Wᵀ`` in ``x``'s shape and sets ``dW = Xᵀ·dY`` (in, out) and
    ``db = Σ_rows dY`` (out,). ``name`` (``Affine1`` in a network) is what errors say.
    """

    symbol, formula, local = "Affine", "Y = X·W + b", ("Wᵀ",)
    input_letters = ("X",)  # forward's x, as the formula writes it
    param_rules = (("dW", "Xᵀ · dout"), ("db", "Σ_rows dout"))

    def __init__(self, W: Any, b: Any, *, name: str = "Affine") -> None:
        self.W, self.b = affine_params(name, W, b)
        self.name = name
        self.x = None
        self.original_x_shape = None
        self.out_shape = None
        self.dW = None
        self.db = None

    def forward(self, x: Any) -> np.ndarray:
        rows = batch_rows(self, x, self.W.shape)
        # Saved together, before any arithmetic: a forward that raises leaves them paired.
        out_shape = (len(self.b),) if np.ndim(x) == 1 else (len(rows), len(self.b))
        self.x, self.original_x_shape, self.out_shape = rows, np.shape(x), out_shape
        return (np.dot(rows, self.W) + self.b).reshape(out_shape)

    def backward(self, dout: Any) -> np.ndarray:
        check_dout(self, dout, self.out_shape)
        dout = np.reshape(dout, (len(self.x), -1))  # one sample's (out,) as a batch of one
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(self.original_x_shape)

    def local_values(self) -> tuple[np.ndarray]:
        return (self.W.T,)


class Dropout:
    """Dropout node (chapter 6): while training, each input is kept with probability
    ``1 − dropout_ratio`` and zeroed otherwise, by a new random ``mask`` of the input's
    shape at each forward (the book's boolean array of kept inputs); backward lets
    ``dout`` through the same mask. At inference (``train_flg=False``) every input
    passes, times ``1 − dropout_ratio``: the book's form, not PyTorch's inverted one (why:
    docs/differences.md).

    ``seed`` (beyond the book's signature) is anything ``np.random.default_rng`` takes: an
    int for a reproducible sequence of masks, or a Generator to share (a network gives all
    its Dropout layers one); the book's draws from NumPy's global generator. ``backward``
    after an inference forward is a StateError (the book's reuses a stale mask).
    """

    symbol, formula, local = "Dropout", "y = x · mask", ("mask",)

    def __init__(self, dropout_ratio: float = 0.5, *, seed: Any = None, name: str = "Dropout"):
        if not (isinstance(dropout_ratio, numbers.Real) and 0 <= dropout_ratio < 1):
            raise ArgumentError(f"{name}: dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dropout_ratio, self.name = float(dropout_ratio), name
        self.rng = np.random.default_rng(seed)
        self.mask = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        check_flag(self, "train_flg", train_flg)
        check_real(self, "input", x)
        if not train_flg:
            self.mask = None  # inference is not differentiated
            return x * (1.0 - self.dropout_ratio)
        # Uniform numbers of x's precision: float32 ones, for float32 input, are cheaper to draw.
        uniform = np.float32 if np.asarray(x).dtype == np.float32 else np.float64
        self.mask = self.rng.random(np.shape(x), dtype=uniform) >= self.dropout_ratio
        return x * self.mask

    def backward(self, dout: Any) -> Any:
        check_trained(self, self.mask)
        check_dout(self, dout, self.mask)
        return dout * self.mask

    def local_values(self) -> tuple[Any]:
        return (self.mask,)


class BatchNormalization:
    """Batch normalisation node (chapter 6): ``y = γ·(x − μ)/√(σ² + ε) + β`` per feature,
    ``gamma`` and ``beta`` (D,) learned. Input (N, D), or (N, C, H, W) whose C·H·W values
    per sample are the D features, as in the book.

    ``forward(x, train_flg=True)`` normalises by the batch's mean and (biased) variance
    and moves the running statistics towards them, ``running = momentum·running + (1 −
    momentum)·batch``; ``train_flg=False`` normalises by the running statistics. Backward
    sets ``dgamma = Σ_rows dout·x̂``, ``dbeta = Σ_rows dout`` and returns ``dx = (dx̂ −
    mean(dx̂) − x̂·mean(dx̂·x̂)) / √(σ² + ε)``, ``dx̂ = γ·dout``: the book's chain in one line.

    Differs from the book's (docs/differences.md): running statistics not given start at
    mean 0 and variance 1 (the book's variance at 0); ``backward`` after an inference
    forward is a StateError. ε is the book's ``10e-7`` (1e-6); ``eps=`` changes it.
    """

    symbol, formula = "BatchNorm", "y = γ · (x − μ) / √(σ² + ε) + β"
    local = ("γ / √(σ² + ε) · (I − 1/N − x̂ x̂ᵀ / N)",)  # an N×N matrix for each feature
    param_rules = (("dgamma", "Σ_rows dout · x̂"), ("dbeta", "Σ_rows dout"))

    def __init__(
        self,
        gamma: Any,
        beta: Any,
        momentum: float = 0.9,
        running_mean: Any = None,
        running_var: Any = None,
        *,
        eps: float = 1e-6,
        name: str = "BatchNormalization",
    ) -> None:
        self.gamma, self.beta = batchnorm_params(name, gamma, beta)
        for what, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if stat is not None and np.shape(stat) != self.gamma.shape:
                raise ShapeError(f"{name}: {what} must have gamma's shape {self.gamma.shape}")
        if not (isinstance(momentum, numbers.Real) and 0 <= momentum <= 1 and eps > 0):
            raise ArgumentError(f"{name}: momentum must be in [0, 1] and eps > 0")
        self.momentum, self.eps, self.name = float(momentum), float(eps), name
        self.running_mean, self.running_var = running_mean, running_var
        self.input_shape = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x: Any, train_flg: bool = True) -> np.ndarray:
        check_flag(self, "train_flg", train_flg)
        rows = feature_rows(self, x, len(self.gamma))
        dtype = np.result_type(self.gamma.dtype, np.float32)
        if self.running_mean is None:  # made at the first forward, as the book's
            self.running_mean = np.zeros(len(self.gamma), dtype)
        if self.running_var is None:
            self.running_var = np.ones(len(self.gamma), dtype)
        if train_flg:
            mu = rows.mean(axis=0)
            xc = rows - mu
            var = np.mean(xc**2, axis=0)
            self.std = np.sqrt(var + self.eps)
            self.xn = xn = xc / self.std
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xn = (rows - self.running_mean) / np.sqrt(self.running_var + self.eps)
            self.xn = self.std = None  # inference is not differentiated
        self.input_shape = np.shape(x)
        return (self.gamma * xn + self.beta).reshape(self.input_shape)

    def backward(self, dout: Any) -> np.ndarray:
        check_trained(self, self.xn)
        check_dout(self, dout, self.input_shape)
        dout = np.reshape(dout, self.xn.shape)
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        # μ and σ² depend on every sample of the batch: hence the two means.
        dx = (dxn - dxn.mean(axis=0) - self.xn * np.mean(dxn * self.xn, axis=0)) / self.std
        return dx.reshape(self.input_shape)

    def local_values(self) -> tuple[np.ndarray]:
        """∂y[i, d] / ∂x[j, d] for every feature d: (N, N, D)."""
        n = len(self.xn)
        outer = self.xn[:, None, :] * self.xn[None, :, :]
        return (self.gamma / self.std * (np.eye(n)[:, :, None] - (1 + outer) / n),)


class Convolution:
    """Convolution node (chapter 7): ``FN`` filters W (FN, C, FH, FW) slide over images x
    (N, C, H, W) padded with ``pad`` zeros on every side, ``stride`` apart; each output is
    a filter's dot product with the window under it, plus the filter's bias b (FN,). Output
    (N, FN, out_h, out_w), ``out_h = (H + 2·pad − FH) // stride + 1``, likewise out_w.

    As in the book, im2col lays each window out as a row of ``col`` (N·out_h·out_w,
    C·FH·FW) and the filters as the columns of ``col_W`` (C·FH·FW, FN), so forward is one
    product ``col · col_W + b``, and backward is Affine's on those matrices:
    ``dW = colᵀ · dout`` (in W's shape), ``db = Σ dout`` over samples and positions, and
    ``dx = col2im(dout · col_Wᵀ)``, col2im adding each window's gradient back onto the
    pixels it came from. The numbers are the book's. The products are computed
    transposed, ``(col · col_W)ᵀ = col_Wᵀ · colᵀ``: ``col`` is copied once from a view of
    all the windows, in the order of ``colᵀ``, and the output comes out channel by channel
    (FN, N, out_h, out_w), where the book's (N, out_h, out_w, FN) leaves each channel's
    values strided for the layers after it. Input that is not (N, C, H, W), or of other
    than the filters' C channels, is a ShapeError.
    """

    symbol, formula, local = "Conv", "y = im2col(x) · W + b", ("Wᵀ via col2im",)
    param_rules = (("dW", "colᵀ · dout"), ("db", "Σ_(N,h,w) dout"))

    def __init__(
        self, W: Any, b: Any, stride: int = 1, pad: int = 0, *, name: str = "Convolution"
    ) -> None:
        self.W, self.b = conv_params(name, W, b)
        self.stride = window_count(name, "stride", stride, 1)
        self.pad = window_count(name, "pad", pad, 0)
        self.name = name
        self.x = None
        self.col = None
        self.col_W = None
        self.out_shape = None
        self.dW = None
        self.db = None

    def forward(self, x: Any) -> np.ndarray:
        FN, C, FH, FW = self.W.shape
        x = image_batch(self, x, C)
        out_h, out_w = window_output(self, x.shape[2:], (FH, FW), self.stride, self.pad, "filter")
        windows = image_windows(x, FH, FW, self.stride, self.pad)  # (N, C, FH, FW, h, w), a view
        col = windows.transpose(1, 2, 3, 0, 4, 5).reshape(C * FH * FW, -1).T  # one copy
        col_W = self.W.reshape(FN, -1).T
        out = np.dot(col_W.T, col.T) + self.b[:, None]  # (col · col_W + b)ᵀ
        self.x, self.col, self.col_W = x, col, col_W
        self.out_shape = (len(x), FN, out_h, out_w)
        return out.reshape(FN, len(x), out_h, out_w).transpose(1, 0, 2, 3)

    def backward(self, dout: Any) -> np.ndarray:
        check_dout(self, dout, self.out_shape)
        N, FN, out_h, out_w = self.out_shape
        dout = np.transpose(dout, (1, 0, 2, 3)).reshape(FN, -1)  # doutᵀ, as out was made
        self.db = np.sum(dout, axis=1)
        self.dW = np.dot(dout, self.col).reshape(self.W.shape)  # (colᵀ · dout)ᵀ
        dcol = np.dot(self.col_W, dout)  # (dout · col_Wᵀ)ᵀ
        dwindows = dcol.reshape(*self.W.shape[1:], N, out_h, out_w).transpose(3, 0, 1, 2, 4, 5)
        return add_windows(dwindows, self.x.shape, self.stride, self.pad)

    def local_values(self) -> tuple[np.ndarray]:
        return (self.col_W.T,)


class Pooling:
    """Max pooling node (chapter 7): the largest value in each ``pool_h``×``pool_w`` window
    of each channel, windows ``stride`` apart. Input (N, C, H, W), output (N, C, out_h,
    out_w), sized as Convolution's.

    As the book's, forward lays out each window's entries side by side (here as an array
    (N, C, pool_h·pool_w, out_h, out_w)) and takes their maximum; ``mask`` marks where it
    was (``arg_max``, the book's, is read from it), and backward sends each window's
    gradient there alone. Where the windows tile the image (stride equal to the window, no
    padding, no pixels left over) each gradient is written in its place through a reshape
    of dx; elsewhere col2im's loop adds them up where windows overlap. Ties: where several
    entries of a window share its maximum, the whole gradient goes to the first of them, in
    row-major order within the window (as NumPy's argmax, which the book's uses; PyTorch's
    max_pool2d on the CPU chooses the same); the others get 0.

    Differs from the book's: the padding is −inf, which is never a maximum (the book's
    pads with 0, which beats a window of negative values); the output size counts the
    padding (the book's leaves it out, and fails for pad > 0); and ``pad`` may be at most
    half the window, as PyTorch's, so that no window holds only padding.
    """

    symbol, formula = "Max pool", "y = max of x over each window"
    local = ("1[x is the first maximum of its window]",)

    def __init__(
        self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0, *, name: str = "Pooling"
    ) -> None:
        self.pool_h = window_count(name, "pool_h", pool_h, 1)
        self.pool_w = window_count(name, "pool_w", pool_w, 1)
        self.stride = window_count(name, "stride", stride, 1)
        self.pad = window_count(name, "pad", pad, 0)
        if 2 * self.pad > min(self.pool_h, self.pool_w):
            raise ShapeError(f"{name}: pad {pad} is more than half the {pool_h}×{pool_w} window")
        self.name = name
        self.x = None
        self.mask = None
        self.out_shape = None

    def forward(self, x: Any) -> np.ndarray:
        x = image_batch(self, x)
        x = x if x.dtype.kind == "f" else x.astype(np.float64)  # −inf padding needs floats
        N, C, H, W = x.shape
        window = (self.pool_h, self.pool_w)
        out_h, out_w = window_output(self, (H, W), window, self.stride, self.pad, "pool window")
        windows = image_windows(x, *window, self.stride, self.pad, pad_value=-np.inf)
        windows = windows.reshape(N, C, -1, out_h, out_w)  # the one copy
        out = windows.max(axis=2)
        self.mask = first_maxima(windows, out)
        self.x, self.out_shape = x, out.shape
        return out

    def backward(self, dout: Any) -> np.ndarray:
        check_dout(self, dout, self.out_shape)
        N, C, out_h, out_w = self.out_shape
        ph, pw = self.pool_h, self.pool_w
        mask = self.mask.reshape(N, C, ph, pw, out_h, out_w)
        dtype = np.result_type(np.asarray(dout).dtype, self.x.dtype)  # a float, as x is
        # Each window's gradient, to all its entries; the mask keeps it at the first maximum.
        dout = np.reshape(dout, (N, C, 1, 1, out_h, out_w)).astype(dtype, copy=False)
        if not self.tiles():  # col2im's loop adds up the windows' gradients where they overlap
            return add_windows(mask * dout, self.x.shape, self.stride, self.pad)
        # Each pixel is in one window: the gradients are written straight to their pixels.
        dx = np.empty(self.x.shape, dtype)
        pixels = dx.reshape(N, C, out_h, ph, out_w, pw)  # each window's pixels in its rows
        np.multiply(mask, dout, out=pixels.transpose(0, 1, 3, 5, 2, 4))
        return dx

    @property
    def arg_max(self) -> np.ndarray:
        """The book's attribute: where in its window each maximum is (row-major), one entry
        per window and channel in the order of the book's im2col rows (N, out_h, out_w, C)."""
        return self.mask.argmax(axis=2).transpose(0, 2, 3, 1).ravel()

    def tiles(self) -> bool:
        """Whether the last input's every pixel was in exactly one window."""
        height, width = self.x.shape[2:]
        size = self.stride  # of every window, if they tile
        return self.pad == 0 == height % size == width % size and self.pool_h == self.pool_w == size

    def local_values(self) -> tuple[np.ndarray]:
        """For each input, the number of windows whose maximum it is."""
        return (self.backward(np.ones(self.out_shape)),)


def first_maxima(windows: np.ndarray, maxima: np.ndarray) -> np.ndarray:
    """A mask of ``windows`` (N, C, entries, out_h, out_w), True at each window's first
    entry equal to its maximum (``maxima``, (N, C, out_h, out_w)): where ``np.argmax``
    would point."""
    mask = windows == maxima[:, :, None]
    seen = mask[:, :, 0].copy()
    for entry in range(1, mask.shape[2]):  # an entry after a maximum is not the first
        mask[:, :, entry] &= ~seen
        seen |= mask[:, :, entry]
    return mask
