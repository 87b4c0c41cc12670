"""Check backpropagation against numerical gradients by central differences.

The numerical gradient of ``f`` at ``p`` is, entry by entry,
``(f(p + h·e_i) − f(p − h·e_i)) / 2h`` (the book uses ``h = 1e-4``); its error is
O(h²) from truncation plus about ``ε·|f| / h`` from rounding, so a check needs float64.

Relative error, per parameter, is defined as
``max_i |backprop_i − numerical_i| / max(max_i |backprop_i|, max_i |numerical_i|)``:
the worst difference measured against the gradient's own scale, so entries that are near
zero in both gradients cannot make it blow up.

ReLU's kink: when a pre-activation lies within the step of 0, ``p ± h`` sit on different
sides of the kink and the central difference is wrong whatever the backprop code does. The
network check watches every ReLU's mask; when a step flips one, it re-measures that entry
with a smaller step, and excludes (and counts) the rare entry that still straddles it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GradcheckReport",
    "ParamCheck",
    "check_gradients",
    "check_layer",
    "numerical_gradient",
    "relative_error",
]

RELATIVE_ERROR_DEFINITION = (
    "relative error = max|backprop − numerical| / max(max|backprop|, max|numerical|)"
)
# How far below h a re-measurement at a ReLU kink may go: rounding error grows as 1/step.
_KINK_STEP_SHRINK = 10.0
_KINK_MIN_STEP_RATIO = 1e-3


def numerical_gradient(f: Callable[[], Any], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x``, which is perturbed in place one entry at a
    time and restored exactly. Returns an array of ``x``'s shape.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = float(f())
        x[index] = original - h
        f_minus = float(f())
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad.astype(x.dtype, copy=False)


def relative_error(backprop: np.ndarray, numerical: np.ndarray) -> tuple[float, float]:
    """``(max absolute error, relative error)`` as defined in this module's docstring."""
    diff = np.abs(np.asarray(backprop, dtype=np.float64) - numerical)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = max(float(np.abs(backprop).max(initial=0.0)), float(np.abs(numerical).max(initial=0.0)))
    return max_abs, (max_abs / scale if scale > 0 else max_abs)


@dataclass
class ParamCheck:
    """The comparison for one parameter (or one input of a layer)."""

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    mean_abs_error: float
    rel_error: float
    passed: bool
    remeasured: int = 0  # entries re-measured with a smaller step because of a ReLU kink
    excluded: int = 0  # entries still straddling a kink at the smallest step: not compared


@dataclass(repr=False)
class GradcheckReport:
    """Per-parameter results of a gradient check, with the settings used.

    ``print(report)`` shows the table of :meth:`format`, and so does a notebook or the
    interactive prompt; ``kinks`` is True where the check watched ReLU (or max) kinks,
    and only then has the table a kink column.
    """

    checks: list[ParamCheck]
    h: float
    tolerance: float
    dtype: str
    description: str = ""
    notes: list[str] = field(default_factory=list)
    kinks: bool = False

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def format(self) -> str:
        """A plain-text table, one row per parameter."""
        lines = []
        if self.description:
            lines.append(self.description)
        lines.append(f"central differences, h = {self.h:g}; {RELATIVE_ERROR_DEFINITION}")
        header = ["param", "shape", "max abs err", "mean abs err", "rel err", "result"]
        rows = [
            [
                c.name,
                "×".join(map(str, c.shape)) or "scalar",
                f"{c.max_abs_error:.2e}",
                f"{c.mean_abs_error:.2e}",
                f"{c.rel_error:.2e}",
                "ok" if c.passed else "FAIL",
            ]
            for c in self.checks
        ]
        if self.kinks:
            header.insert(-1, "kink")
            for row, c in zip(rows, self.checks):
                row.insert(-1, f"{c.remeasured}/{c.excluded}")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if self.kinks:
            lines.append(
                "kink = entries re-measured with a smaller step / entries excluded, "
                "because the step crossed a ReLU kink"
            )
        lines.extend(self.notes)
        failed = [c.name for c in self.checks if not c.passed]
        if failed:
            lines.append(f"FAIL: {', '.join(failed)} above the tolerance {self.tolerance:g}")
        else:
            lines.append(f"PASS: every relative error <= {self.tolerance:g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return self.format()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's display: the table, as print shows it."""
        printer.text(self.format())


def _kink_masks(network: Any) -> list[np.ndarray]:
    return [layer.mask for layer in network.layers.values() if hasattr(layer, "mask")]


def _masks_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def _network_numerical_gradient(
    network: Any, x: Any, t: Any, param: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Central differences for one parameter, stepping around ReLU kinks.

    Returns the gradient, a boolean array of excluded entries, and the re-measured count.
    """

    def loss_and_masks() -> tuple[float, list[np.ndarray]]:
        loss = float(network.loss(x, t))
        return loss, [mask.copy() for mask in _kink_masks(network)]

    _, base_masks = loss_and_masks()
    grad = np.zeros(param.shape, dtype=np.float64)
    excluded = np.zeros(param.shape, dtype=bool)
    remeasured = 0
    for index in np.ndindex(param.shape):
        original = param[index]
        step = h
        while True:
            param[index] = original + step
            f_plus, masks_plus = loss_and_masks()
            param[index] = original - step
            f_minus, masks_minus = loss_and_masks()
            param[index] = original
            if _masks_equal(masks_plus, base_masks) and _masks_equal(masks_minus, base_masks):
                break
            if step == h:
                remeasured += 1
            step /= _KINK_STEP_SHRINK
            if step < h * _KINK_MIN_STEP_RATIO:
                excluded[index] = True
                break
        grad[index] = (f_plus - f_minus) / (2 * step)
    return grad, excluded, remeasured


def check_gradients(
    network: Any,
    x: Any,
    t: Any,
    *,
    h: float = 1e-4,
    tolerance: float = 1e-6,
    description: str = "",
) -> GradcheckReport:
    """Compare ``network.gradient(x, t)`` with central differences, parameter by parameter.

    ``network`` needs ``params``, ``loss(x, t)``, ``gradient(x, t)`` and ``layers`` (any
    layer with a ``mask`` is watched for kinks). Use a float64 network: in float32 the
    rounding error of a central difference alone is about 1e-3 relative.
    """
    backprop = {key: np.array(g, dtype=np.float64) for key, g in network.gradient(x, t).items()}
    checks = []
    for key, param in network.params.items():
        numerical, excluded, remeasured = _network_numerical_gradient(network, x, t, param, h)
        compared = ~excluded
        diff = np.abs(backprop[key] - numerical)[compared]
        max_abs, rel = relative_error(backprop[key][compared], numerical[compared])
        checks.append(
            ParamCheck(
                name=key,
                shape=param.shape,
                max_abs_error=max_abs,
                mean_abs_error=float(diff.mean()) if diff.size else 0.0,
                rel_error=rel,
                passed=bool(rel <= tolerance),
                remeasured=remeasured,
                excluded=int(excluded.sum()),
            )
        )
    dtype = str(next(iter(network.params.values())).dtype)
    notes = []
    if dtype != "float64":
        notes.append(f"note: parameters are {dtype}; central differences need float64 to be exact")
    kinks = bool(_kink_masks(network))
    return GradcheckReport(checks, h, tolerance, dtype, description, notes, kinks)


def check_layer(
    layer: Any,
    *inputs: Any,
    h: float = 1e-6,
    tolerance: float = 1e-7,
    seed: int = 0,
) -> GradcheckReport:
    """Check one node's ``backward`` (every floating input and parameter) numerically.

    The scalar checked is ``L = Σ forward(*inputs) · G`` for a fixed random upstream
    gradient ``G``, so ``backward(G)`` must return ``dL/d input``. Integer inputs (labels)
    are not differentiated. Parameters are those the node names in ``param_rules``: the
    gradient ``dW`` of the attribute ``W``, as the book names them (``Affine``). Inputs
    are copied to float64 arrays.
    """
    arrays = [
        np.array(v, dtype=np.float64) if np.issubdtype(np.asarray(v).dtype, np.floating) else v
        for v in inputs
    ]
    out = layer.forward(*arrays)
    upstream = np.random.default_rng(seed).standard_normal(np.shape(out))
    if np.ndim(out) == 0:
        upstream = float(upstream)

    def objective() -> float:
        return float(np.sum(layer.forward(*arrays) * upstream))

    objective()
    input_grads = layer.backward(upstream)
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    targets: list[tuple[str, np.ndarray, Any]] = [
        (f"input {i}", array, grad)
        for i, (array, grad) in enumerate(zip(arrays, input_grads))
        if isinstance(array, np.ndarray) and array.dtype == np.float64
    ]
    targets += [
        (grad_name[1:], getattr(layer, grad_name[1:]), np.array(getattr(layer, grad_name)))
        for grad_name, _ in getattr(layer, "param_rules", ())
    ]
    checks = []
    for name, array, analytic in targets:
        numerical = numerical_gradient(objective, array, h)
        if np.shape(analytic) != array.shape:
            analytic = np.full(array.shape, np.inf)  # a gradient of the wrong shape fails
        max_abs, rel = relative_error(analytic, numerical)
        checks.append(
            ParamCheck(
                name=name,
                shape=array.shape,
                max_abs_error=max_abs,
                mean_abs_error=float(np.abs(analytic - numerical).mean()) if array.size else 0.0,
                rel_error=rel,
                passed=bool(rel <= tolerance),
            )
        )
    return GradcheckReport(checks, h, tolerance, "float64", type(layer).__name__)
