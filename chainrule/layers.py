"""The nodes of a computational graph, as chapter 5 of "Deep Learning from Scratch" writes them.

Every node keeps one contract:

- ``forward(*inputs)`` computes the output and saves what ``backward`` needs, in the
  book's attribute names (``x``, ``y``, ``mask``, ``out``, ``W``, ``b``).
- ``backward(dout)`` takes the upstream gradient ``dL/d(output)`` and returns new arrays,
  the downstream gradients ``dL/d(input)``: one for a one-input node, a tuple in the order
  of ``forward``'s arguments for a node with several. Parameter gradients are attributes
  (``Affine.dW``, ``Affine.db``).
- No ``backward`` writes into ``dout`` or into what it saved: one gradient may be shared
  by several nodes (an Add node passes the same array to both of its inputs).

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

The training loop does not run these classes: :mod:`chainrule.fast` computes the same
numbers with reused buffers, and the tests hold the two equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.checks import affine_params, batch_rows, broadcast_shape, check_dout, check_real
from chainrule.losses import SoftmaxWithLoss

__all__ = ["AddLayer", "Affine", "MulLayer", "Relu", "Sigmoid", "SoftmaxWithLoss", "sigmoid"]


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
        return np.where(self.mask, 0, x)

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.mask)
        # A new array, where the book writes `dout[mask] = 0`: editing dout in place would
        # corrupt a gradient that another node shares.
        return np.where(self.mask, 0, dout)

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
