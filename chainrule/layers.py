"""The nodes of a computational graph, as chapter 5 of "Deep Learning from Scratch" builds them.

The contract every node keeps:

- ``forward(*inputs)`` computes the output and saves exactly what ``backward`` needs.
- ``backward(dout)`` takes the upstream gradient ``dL/d(output)`` and returns the
  downstream gradients ``dL/d(input)``: one array for a one-input node, a tuple in the
  order of ``forward``'s arguments for a node with several inputs.
- Gradients of a node's own parameters are attributes (``Affine.dW``, ``Affine.db``).
- No ``backward`` writes into ``dout`` or into an array it saved: a gradient may be shared
  by several nodes (an Add node passes the same array to both inputs).

Speed, and which arrays may be reused:

- Called as the book calls them, ``forward`` and ``backward`` return new arrays on every
  call (and ``Affine`` binds new ``dW`` and ``db``), so a caller may keep any result. The
  recorded :class:`~chainrule.graph.Graph`, the gradient checks and the book's code rely
  on that, and all of them call the layers this way.
- ``Relu``, ``Sigmoid``, ``Affine`` and ``SoftmaxWithLoss`` also take a keyword
  ``workspace``: a dict, owned by the caller, where the layer keeps its output and
  gradient arrays from call to call (one array per role, made again only when the batch
  shape or dtype changes). Each call with a workspace then overwrites, in place, every
  array the previous call with that workspace returned or saved (outputs, ``dX``,
  ``dW``, ``db``, ``mask``), and allocates nothing. This is the networks' training step
  (:meth:`~chainrule.networks.MultiLayerNet.loss_and_gradient`), whose results are used
  before the next step; the arrays it writes into are documented there.
- ``Affine.backward(dout, input_grad=False)`` skips ``dX = dY·Wᵀ`` and returns None,
  for a first layer, whose input gradient nothing needs.
- Each of those ``forward``/``backward`` calls with a workspace is two parts: the checks
  (types, shapes, state) and the sizing of the workspace's arrays, then
  ``forward_into``/``backward_into``, the arithmetic alone. A network calls the checked
  methods on the first step of a batch shape and the ``_into`` methods on the steps that
  follow with that shape, whose inputs it has already checked: on a small network the
  checks cost as much as a tenth of a training step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.arrays import Workspace, buffer, check_real, ones
from chainrule.errors import ShapeError, StateError
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


def _require_forward(layer: object, saved: object) -> None:
    if saved is None:
        raise StateError(f"{type(layer).__name__}.backward was called before forward")


def _check_dout(layer: object, dout: Any, shape: tuple[int, ...]) -> None:
    """``dout`` must be real and of the forward output's shape."""
    name = type(layer).__name__
    check_real(name, "dout", dout)
    if np.shape(dout) != shape:
        raise ShapeError(f"{name}.backward: dout has shape {np.shape(dout)}, expected {shape}")


def _broadcast_shape(layer: object, x: Any, y: Any) -> tuple[int, ...]:
    """The shape of ``x ∘ y`` after broadcasting, checking both inputs first."""
    name = type(layer).__name__
    check_real(name, "x", x)
    check_real(name, "y", y)
    try:
        return np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError:
        raise ShapeError(
            f"{name}: x of shape {np.shape(x)} and y of shape {np.shape(y)} do not broadcast"
        ) from None


class MulLayer:
    """Multiply node ``z = x * y`` (element-wise, broadcasting allowed).

    Backward swaps the inputs: ``dx = dout * y``, ``dy = dout * x``; so forward keeps both.
    Works on Python floats and on NumPy arrays.
    """

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None
        self.out_shape: tuple[int, ...] | None = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = _broadcast_shape(self, x, y)
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        _require_forward(self, self.x)
        _check_dout(self, dout, self.out_shape)
        dx = sum_to_shape(dout * self.y, np.shape(self.x))
        dy = sum_to_shape(dout * self.x, np.shape(self.y))
        return dx, dy


class AddLayer:
    """Add node ``z = x + y`` (element-wise, broadcasting allowed).

    Backward passes the upstream gradient unchanged to both inputs (``∂z/∂x = ∂z/∂y = 1``),
    summed back to an input's shape where broadcasting made that input smaller.
    """

    def __init__(self) -> None:
        self.x_shape: tuple[int, ...] | None = None
        self.y_shape: tuple[int, ...] | None = None
        self.out_shape: tuple[int, ...] | None = None

    def forward(self, x: Any, y: Any) -> Any:
        self.out_shape = _broadcast_shape(self, x, y)
        self.x_shape, self.y_shape = np.shape(x), np.shape(y)
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        _require_forward(self, self.x_shape)
        _check_dout(self, dout, self.out_shape)
        return sum_to_shape(dout, self.x_shape), sum_to_shape(dout, self.y_shape)


class Relu:
    """ReLU node ``y = max(x, 0)``; ``dx = dout`` where ``x > 0``, else 0.

    ``mask`` marks where the input was positive (the book's ``mask`` marks the opposite);
    the gradient check reads it to find inputs that sit on the kink at 0.
    """

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None

    def forward(self, x: Any, *, workspace: Workspace | None = None) -> Any:
        x = np.asarray(x)
        check_real("Relu", "input", x)
        if workspace is None:
            self.mask = x > 0
            return np.maximum(x, 0)
        buffer(workspace, "mask", x.shape, np.bool_)
        buffer(workspace, "out", x.shape, x.dtype)
        zeros = workspace.get("zeros")
        if zeros is None or zeros.shape != x.shape or zeros.dtype != x.dtype:
            workspace["zeros"] = np.zeros_like(x)
        return self.forward_into(x, workspace)

    def forward_into(self, x: np.ndarray, workspace: Workspace) -> np.ndarray:
        """:meth:`forward`'s arithmetic, unchecked, into a workspace already sized for ``x``."""
        self.mask = np.greater(x, 0, out=workspace["mask"])
        # The maximum against an array of zeros: NumPy 2.4 runs its two-array loop about
        # three times as fast as the array-and-scalar one.
        return np.maximum(x, workspace["zeros"], out=workspace["out"])

    def backward(self, dout: Any, *, workspace: Workspace | None = None) -> Any:
        _require_forward(self, self.mask)
        _check_dout(self, dout, self.mask.shape)
        dout = np.asarray(dout)
        if workspace is None:
            return np.multiply(dout, self.mask)
        buffer(workspace, "dx", dout.shape, np.result_type(dout, self.mask))
        return self.backward_into(dout, workspace)

    def backward_into(self, dout: np.ndarray, workspace: Workspace) -> np.ndarray:
        """:meth:`backward`'s arithmetic, unchecked, into a workspace already sized for it."""
        # A multiply by the mask, not the book's `dout[mask] = 0`: that edits dout in place,
        # which corrupts a gradient shared with another node.
        return np.multiply(dout, self.mask, out=workspace["dx"])


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, finite and accurate for any input."""
    # exp(-log(1 + exp(-x))): logaddexp never overflows, and unlike the tanh form it keeps
    # full relative precision for tiny outputs (x << 0), so it agrees with PyTorch to 1e-15.
    x = np.asarray(x, dtype=np.result_type(x, 0.0))  # ints and bools compute in float
    return np.exp(-np.logaddexp(0.0, np.negative(x)))


class Sigmoid:
    """Sigmoid node ``y = 1 / (1 + exp(-x))``; ``dx = dout * y * (1 - y)``.

    Backward needs only the output, so forward keeps ``out``, not ``x``.
    """

    def __init__(self) -> None:
        self.out: Any = None

    def forward(self, x: Any, *, workspace: Workspace | None = None) -> Any:
        check_real("Sigmoid", "input", x)
        if workspace is None:
            self.out = sigmoid(x)
            return self.out
        x = np.asarray(x, dtype=np.result_type(x, 0.0))  # ints and bools compute in float
        buffer(workspace, "out", x.shape, x.dtype)
        return self.forward_into(x, workspace)

    def forward_into(self, x: np.ndarray, workspace: Workspace) -> np.ndarray:
        """:meth:`forward`'s arithmetic, unchecked, into a workspace already sized for ``x``."""
        out = np.negative(x, out=workspace["out"])  # the operations of sigmoid(), in place
        np.logaddexp(0.0, out, out=out)
        self.out = np.exp(np.negative(out, out=out), out=out)
        return out

    def backward(self, dout: Any, *, workspace: Workspace | None = None) -> Any:
        _require_forward(self, self.out)
        _check_dout(self, dout, np.shape(self.out))
        if workspace is None:
            return dout * self.out * (1.0 - self.out)
        dout = np.asarray(dout)
        dtype = np.result_type(dout, self.out)
        buffer(workspace, "dx", self.out.shape, dtype)
        buffer(workspace, "1-y", self.out.shape, dtype)
        return self.backward_into(dout, workspace)

    def backward_into(self, dout: np.ndarray, workspace: Workspace) -> np.ndarray:
        """:meth:`backward`'s arithmetic, unchecked, into a workspace already sized for it."""
        dx = np.multiply(dout, self.out, out=workspace["dx"])
        dx *= np.subtract(1.0, self.out, out=workspace["1-y"])
        return dx


class Affine:
    """Fully connected node ``Y = X·W + b``.

    Shapes: ``W`` (in, out), ``b`` (out,); ``x`` (N, ...) is flattened to (N, in), and a
    single sample (in,) is accepted too. Backward returns ``dX = dY·Wᵀ`` in ``x``'s shape and
    sets ``dW = Xᵀ·dY`` (in, out) and ``db = Σ_rows dY`` (out,).
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, *, name: str = "Affine") -> None:
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ShapeError(
                f"{name}: W must be 2-d (in, out) and b of shape (out,); "
                f"got W {W.shape}, b {b.shape}"
            )
        self.W, self.b, self.name = W, b, name
        self.x: np.ndarray | None = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The node's parameters by name: ``{"W": W, "b": b}``."""
        return {"W": self.W, "b": self.b}

    @property
    def grads(self) -> dict[str, np.ndarray | None]:
        """The parameters' gradients from the last backward: ``{"W": dW, "b": db}``."""
        return {"W": self.dW, "b": self.db}

    def forward(self, x: Any, *, workspace: Workspace | None = None) -> np.ndarray:
        x = np.asarray(x)
        check_real(self.name, "input", x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ShapeError(f"{self.name}: got an empty batch or a scalar, input shape {x.shape}")
        # One sample (in,) is a batch of one; any (N, d1, d2, ...) is flattened to (N, in).
        x2 = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)
        if x2.shape[1] != self.W.shape[0]:
            raise ShapeError(self._shape_message(x.shape))
        # Saved before any arithmetic, so that a forward that raises leaves them paired;
        # backward gives dX the shape of x: (in,) for one sample, (N, d1, ...) for a batch.
        self.x, self.original_x_shape = x2, x.shape
        if workspace is None:
            out = x2 @ self.W + self.b
        else:
            dtype = np.result_type(x2, self.W, self.b)
            buffer(workspace, "out", (len(x2), len(self.b)), dtype)
            out = self._matmul_add_bias(x2, workspace)
        return out[0] if x.ndim == 1 else out

    def forward_into(self, x: np.ndarray, workspace: Workspace) -> np.ndarray:
        """:meth:`forward`'s arithmetic, unchecked, for a batch ``x`` (N, ...) of the shape
        the workspace was last sized for."""
        x2 = x.reshape(len(x), -1)
        self.x, self.original_x_shape = x2, x.shape
        return self._matmul_add_bias(x2, workspace)

    def _matmul_add_bias(self, x2: np.ndarray, workspace: Workspace) -> np.ndarray:
        out = np.matmul(x2, self.W, out=workspace["out"])
        out += self.b
        return out

    def backward(
        self, dout: np.ndarray, *, workspace: Workspace | None = None, input_grad: bool = True
    ) -> np.ndarray | None:
        """Set ``dW`` and ``db``; return ``dX``, or None when ``input_grad`` is False."""
        _require_forward(self, self.x)
        dout = np.asarray(dout)
        check_real(self.name, "dout", dout)
        batch_size, fan_out = self.x.shape[0], self.W.shape[1]
        expected = (fan_out,) if len(self.original_x_shape) == 1 else (batch_size, fan_out)
        if dout.shape != expected:
            raise ShapeError(
                f"{self.name}.backward: dout has shape {dout.shape}, expected {expected}"
            )
        dout2 = dout.reshape(batch_size, fan_out)
        if workspace is None:
            self.dW = self.x.T @ dout2
            self.db = dout2.sum(axis=0)
            dx = dout2 @ self.W.T if input_grad else None
        else:
            buffer(workspace, "dW", self.W.shape, np.result_type(self.x, dout2))
            buffer(workspace, "db", self.b.shape, dout2.dtype)
            ones(workspace, batch_size, dout2.dtype)
            if input_grad:
                buffer(workspace, "dx", self.x.shape, np.result_type(dout2, self.W))
            dx = self.backward_into(dout2, workspace, input_grad=input_grad)
        return None if dx is None else dx.reshape(self.original_x_shape)

    def backward_into(
        self, dout2: np.ndarray, workspace: Workspace, *, input_grad: bool = True
    ) -> np.ndarray | None:
        """:meth:`backward`'s arithmetic, unchecked, for a 2-d ``dout2`` (N, out), into a
        workspace already sized for it; returns ``dX`` as (N, in), or None."""
        self.dW = np.matmul(self.x.T, dout2, out=workspace["dW"])
        # The same sum as Σ_rows dY, as ones·dY by BLAS (see chainrule.arrays.ones).
        self.db = np.matmul(workspace["ones"], dout2, out=workspace["db"])
        if not input_grad:
            return None
        return np.matmul(dout2, self.W.T, out=workspace["dx"])

    def _shape_message(self, shape: tuple[int, ...]) -> str:
        fan_in, fan_out = self.W.shape
        return (
            f"{self.name}: input of shape {shape} does not fit W of shape {(fan_in, fan_out)}; "
            f"expected (N, {fan_in}) or any (N, ...) with {fan_in} values per sample"
        )
