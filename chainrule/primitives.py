"""The primitive nodes a learner writes with NumPy's spelling on a graph's values.

``-x``, ``x - y``, ``x / y``, ``1 / x``, ``x ** k``, ``x @ y``, ``x.exp()``, ``x.log()``
and ``x.sum(axis, keepdims)`` each record one of these nodes, so the computations chapter 5
and Appendix A of the book draw can be built, drawn and checked: the sigmoid of Figure
5-19 from ×(−1), exp, +1 and /; Affine as a dot node and an add node (Figure 5-25);
Softmax-with-Loss from exp, sum, /, log and × (Appendix A).

Each class is its math alone, in the node contract of :mod:`chainrule.layers`
(``forward``, ``backward`` returning new arrays, broadcasting summed back as MulLayer and
AddLayer do), and says how it is shown through the node protocol described there. Two
optional parts of the protocol serve these nodes:

- ``written``: how the trace writes the node applied to its inputs, ``{0}`` and ``{1}``
  standing for their names (``1 / {0}``, ``{0}²``), where neither an operator between
  them nor ``symbol(…)`` reads right;
- ``input_rules``: each input's gradient as a rule in ``param_rules``' words, where it is
  not the element-wise ``dout · local`` (a matrix product puts ``dout`` on either side).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import DTypeError, ShapeError
from chainrule.layers import sum_to_shape
from chainrule.validation import broadcast_shape, check_dout, check_real

__all__ = ["Div", "Dot", "Exp", "Log", "Neg", "Pow", "Reciprocal", "Sub", "Sum", "power_text"]

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def power_text(base: str, k: float) -> str:
    """``x²`` for a whole exponent, ``x**0.5`` otherwise; ``x`` alone for 1."""
    if float(k).is_integer():
        return base if k == 1 else base + str(int(k)).translate(_SUPERSCRIPT)
    return f"{base}**{k:g}"


class Neg:
    """Negation ``y = −x``; ``dx = −dout``."""

    symbol, formula, local = "−", "y = −x", ("−1",)

    def __init__(self) -> None:
        self.x_shape = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.x_shape = np.shape(x)
        return -x

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.x_shape)
        return -dout

    def local_values(self) -> tuple[int]:
        return (-1,)


class Sub:
    """Subtraction ``z = x − y``; ``dx = dout``, ``dy = −dout``, summed back where broadcast."""

    symbol, formula, local = "−", "z = x − y", ("1", "−1")

    def __init__(self) -> None:
        self.x_shape = None
        self.y_shape = None
        self.out_shape = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = broadcast_shape(self, x, y)
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return x - y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        check_dout(self, dout, self.out_shape)
        return sum_to_shape(dout, self.x_shape), sum_to_shape(-dout, self.y_shape)

    def local_values(self) -> tuple[int, int]:
        return 1, -1


class Div:
    """Division ``z = x / y``; ``dx = dout / y``, ``dy = −dout · x / y²``."""

    symbol, formula, local = "/", "z = x / y", ("1 / y", "−x / y²")

    def __init__(self) -> None:
        self.x = None
        self.y = None
        self.out_shape = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = broadcast_shape(self, x, y)
        self.x, self.y = x, y
        return np.true_divide(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        check_dout(self, dout, self.out_shape)
        dx, dy = self.local_values()
        return sum_to_shape(dout * dx, np.shape(self.x)), sum_to_shape(dout * dy, np.shape(self.y))

    def local_values(self) -> tuple[Any, Any]:
        return np.true_divide(1, self.y), -np.true_divide(self.x, np.square(self.y))


class Reciprocal:
    """The book's ``/`` node, ``y = 1 / x`` (Figure 5-19): ``dx = −dout · y²``."""

    symbol, formula, local, written = "/", "y = 1 / x", ("−y²",), "1 / {0}"

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.out = np.true_divide(1, x)
        return self.out

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.out)
        return dout * self.local_values()[0]

    def local_values(self) -> tuple[Any]:
        return (-np.square(self.out),)


class Pow:
    """Power ``y = x^k`` for a number ``k`` (the book's ``**2`` node, Figure 5-7):
    ``dx = dout · k·x^(k−1)``."""

    def __init__(self, k: float) -> None:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.number)):
            raise DTypeError(
                f"x ** k takes a number k, got {type(k).__name__}; a power of two values "
                "is exp(k · log(x))"
            )
        self.k = k
        self.x = None

    @property
    def symbol(self) -> str:
        return f"**{self.k:g}"

    @property
    def formula(self) -> str:
        return f"y = {power_text('x', self.k)}"

    @property
    def written(self) -> str:
        return power_text("{0}", self.k)

    @property
    def local(self) -> tuple[str]:
        k = self.k
        return (f"{k:g}" if k - 1 == 0 else f"{k:g}·{power_text('x', k - 1)}",)

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.x = x
        return np.power(np.asarray(x, dtype=np.result_type(x, 0.0)), self.k)

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.x)
        return dout * self.local_values()[0]

    def local_values(self) -> tuple[Any]:
        x = np.asarray(self.x, dtype=np.result_type(self.x, 0.0))
        return (self.k * np.power(x, self.k - 1),)


class Exp:
    """Exponential ``y = exp(x)``: its own derivative, so ``dx = dout · y``."""

    symbol, formula, local = "exp", "y = exp(x)", ("y",)

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.out = np.exp(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.out)
        return dout * self.out

    def local_values(self) -> tuple[Any]:
        return (self.out,)


class Log:
    """Natural logarithm ``y = log(x)``; ``dx = dout / x``."""

    symbol, formula, local = "log", "y = log(x)", ("1 / x",)

    def __init__(self) -> None:
        self.x = None

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        self.x = x
        return np.log(x)

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.x)
        return dout * self.local_values()[0]

    def local_values(self) -> tuple[Any]:
        return (np.true_divide(1, self.x),)


class Sum:
    """Sum ``y = Σ x`` over ``axis`` (all axes when None), as ``np.sum``: each entry reaches
    the sum once, so ``dx`` is ``dout`` repeated back over the summed axes."""

    symbol, formula, local = "sum", "y = Σ x", ("1",)

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims
        self.x_shape = None
        self.out_shape = None

    @property
    def written(self) -> str:
        options = "" if self.axis is None else f", axis={self.axis}"
        options += ", keepdims=True" if self.keepdims else ""
        return f"sum({{0}}{options})"

    @property
    def input_rules(self) -> tuple[str]:
        where = "every axis" if self.axis is None else f"axis {self.axis}"
        return (f"dout repeated over {where}",)

    def forward(self, x: Any) -> Any:
        check_real(self, "input", x)
        try:
            out = np.sum(x, axis=self.axis, keepdims=self.keepdims)
        except np.exceptions.AxisError as error:
            raise ShapeError(f"Sum: {error}") from None
        self.x_shape, self.out_shape = np.shape(x), np.shape(out)
        return out

    def backward(self, dout: Any) -> Any:
        check_dout(self, dout, self.out_shape)
        kept = np.sum(np.zeros(self.x_shape), axis=self.axis, keepdims=True).shape
        return np.broadcast_to(np.reshape(dout, kept), self.x_shape).copy()

    def local_values(self) -> tuple[int]:
        return (1,)


class Dot:
    """Matrix product ``Y = X · W`` (``X @ W``, the book's ``dot`` node of Figure 5-25):
    ``dX = dout · Wᵀ``, ``dW = Xᵀ · dout``. A vector on either side is taken as a row or a
    column, and stacks of matrices broadcast, as in ``np.matmul``."""

    symbol, formula, local = "dot", "Y = X · W", ("Wᵀ", "Xᵀ")
    input_letters = ("X", "W")
    input_rules = ("dout · Wᵀ", "Xᵀ · dout")

    def __init__(self) -> None:
        self.x = None
        self.w = None
        self.out_shape = None

    def forward(self, x: Any, w: Any) -> Any:
        check_real(self, "X", x)
        check_real(self, "W", w)
        x, w = np.asarray(x), np.asarray(w)
        if x.ndim == 0 or w.ndim == 0:
            raise ShapeError(f"Dot: X @ W needs arrays, got shapes {x.shape} and {w.shape}")
        try:
            out = np.matmul(x, w)
        except ValueError:
            raise ShapeError(
                f"Dot: X of shape {x.shape} and W of shape {w.shape} do not multiply: X's last "
                f"axis has {x.shape[-1]} entries, W's {'only' if w.ndim == 1 else 'first'} "
                f"{w.shape[-2] if w.ndim > 1 else w.shape[0]}"
            ) from None
        self.x, self.w, self.out_shape = x, w, np.shape(out)
        return out

    def backward(self, dout: Any) -> tuple[np.ndarray, np.ndarray]:
        check_dout(self, dout, self.out_shape)
        # A vector is a row (on the left) or a column (on the right), as matmul takes it.
        x = self.x[None, :] if self.x.ndim == 1 else self.x
        w = self.w[:, None] if self.w.ndim == 1 else self.w
        batch = np.broadcast_shapes(x.shape[:-2], w.shape[:-2])
        dout = np.reshape(dout, (*batch, x.shape[-2], w.shape[-1]))
        dx = sum_to_shape(np.matmul(dout, np.swapaxes(w, -1, -2)), x.shape)
        dw = sum_to_shape(np.matmul(np.swapaxes(x, -1, -2), dout), w.shape)
        return np.reshape(dx, self.x.shape), np.reshape(dw, self.w.shape)

    def local_values(self) -> tuple[np.ndarray, np.ndarray]:
        return np.swapaxes(np.atleast_2d(self.w), -1, -2), np.swapaxes(
            np.atleast_2d(self.x), -1, -2
        )
