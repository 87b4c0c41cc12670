"""Parameter-update rules (optimisers) with the book's names and defaults.

Every optimiser follows the interface of the book's ``common/optimizer.py``::

    opt = Adam(lr=0.001)
    opt.update(params, grads)   # params[key] -= (something computed from grads[key])

``params`` and ``grads`` map a parameter name (``"W1"``, ``"b1"`` ...) to an
array; ``grads[key]`` must have the shape of ``params[key]``.  The arrays in
``params`` are the very arrays the network's layers hold, so ``update`` changes
them *in place* and never rebinds a dictionary entry holding an array.  A plain
number (``{'x': -7.0, 'y': 2.0}``, the book's chapter 6 toy problem) cannot change
in place: its entry is rebound to the updated number, as the book's optimisers do.

Speed: ``update`` runs once per training step, so it allocates nothing per step.
Each optimiser keeps, per parameter, its state buffers (velocity, squared-gradient
sums, moments; allocated on the first update, with the parameter's dtype) and one
scratch buffer that every intermediate result is written into with ``out=``.

State for checkpoints: ``state_dict()`` returns flat, plain numeric arrays
(``"lr"``, ``"t"``, ``"v/W1"`` ...) and ``load_state_dict()`` restores them, so
a resumed run reproduces the uninterrupted one bit for bit.

Where a formulation differs from the book's, the class docstring says exactly how
and which ``torch.optim`` rule it equals instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from chainrule.errors import CheckpointError, ShapeError

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "make_optimizer",
]


# --------------------------------------------------------------------------- validation


def _real(name: str, value: Any) -> float:
    """``value`` as a float, or a ValueError naming the argument."""
    # bool is an int subclass; ``lr=True`` is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


def _positive(name: str, value: Any) -> float:
    """A finite number > 0 (learning rates, eps)."""
    out = _real(name, value)
    if out <= 0.0:
        raise ValueError(f"{name} must be > 0, got {out!r}")
    return out


def _unit_interval(name: str, value: Any) -> float:
    """A number in [0, 1) (momentum, decay rates, betas): 1 would never forget."""
    out = _real(name, value)
    if not 0.0 <= out < 1.0:
        raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {out!r}")
    return out


def _is_real_number(value: Any) -> bool:
    """A Python or NumPy int or float (not a bool, which is a mistake, not 1.0)."""
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _as_parameter(value: Any) -> np.ndarray:
    """A parameter as an array: an array as it is, a number as a new 0-d float array."""
    if isinstance(value, np.ndarray) or not _is_real_number(value):
        return value  # _validate says what is wrong with anything else
    return np.array(value, dtype=value.dtype if isinstance(value, np.floating) else np.float64)


# --------------------------------------------------------------------------- base class


class Optimizer:
    """Base class: argument checks, lazily allocated buffers and the state dict.

    A subclass names its hyperparameters in ``_hyper`` (each is an attribute and a
    constructor argument), its per-parameter state buffers in ``_buffers`` (each
    is an attribute: a dict from parameter name to an array of that parameter's
    shape and dtype, e.g. the book's ``Momentum.v``), and implements ``_apply``.
    :func:`chainrule.train.fit` trains through ``train_step``, which a subclass may
    override to take the whole step its own way (as ``SGD`` does).

    Attributes:
        t: how many times ``update`` has run (the book's ``Adam.iter``).
    """

    name: ClassVar[str] = ""
    _hyper: ClassVar[tuple[str, ...]] = ("lr",)
    _buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **hyper: Any) -> None:
        """``hyper``: each name of ``_hyper`` with its value, checked by ``_check_hyper``."""
        for name in self._hyper:
            setattr(self, name, self._check_hyper(name, hyper[name]))
        self.t = 0
        # One scratch array per parameter receives every intermediate result, so a
        # step allocates nothing.  It is not state: its contents never outlive a step.
        self._scratch: dict[str, np.ndarray] = {}
        for buf in self._buffers:
            setattr(self, buf, {})

    # -- public API -------------------------------------------------------------------

    @property
    def hyperparams(self) -> dict[str, float]:
        """The hyperparameters as ``{name: value}`` (JSON-ready, e.g. for checkpoint meta)."""
        return {h: float(getattr(self, h)) for h in self._hyper}

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Apply one step to every parameter in ``params``.

        Args:
            params: name -> float array, modified in place; or name -> a real number
                (a Python or NumPy float or int), whose entry is rebound to the updated
                number (a Python float for a Python number, else the NumPy scalar type).
                0-d arrays are arrays: updated in place.
            grads: name -> array of the same shape as ``params[name]``, or a real
                number for a number or 0-d array (same keys as ``params``).

        Raises:
            ShapeError: the key sets differ, or a gradient's (or a loaded state
                buffer's) shape differs from its parameter's.  Nothing is modified.
            TypeError: a parameter is neither a writeable floating-point ndarray nor
                a real number.
        """
        if all(isinstance(p, np.ndarray) for p in params.values()):
            arrays = params
        else:  # numbers as 0-d arrays, to be updated like the rest
            arrays = {key: _as_parameter(p) for key, p in params.items()}
        self._validate(arrays, grads)
        self.t += 1
        # A step size beyond the dtype's range overflows to inf: divergence, which fit
        # reports from the next loss, so NumPy's warning would only repeat it.
        with np.errstate(over="ignore"):
            self._apply(arrays, grads)
        if arrays is not params:  # a number cannot change in place: its entry is rebound
            for key, p in params.items():
                if not isinstance(p, np.ndarray):
                    new = arrays[key]
                    params[key] = new[()] if isinstance(p, np.generic) else new.item()

    def train_step(self, model: Any, params: dict[str, Any], x: np.ndarray, t: np.ndarray) -> float:
        """One training step on the batch ``(x, t)``; returns its loss (before the update).

        ``model`` computes the step: ``model.loss_and_gradient(x, t)`` (the network's, or
        its engine :class:`~chainrule.engine.Step`), then ``update(params, grads)``.
        When the loss is not finite nothing is updated: the caller decides what to do.
        """
        loss, grads = model.loss_and_gradient(x, t)
        loss = float(loss)
        if math.isfinite(loss):
            self.update(params, grads)
        return loss

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as flat plain numeric arrays (copies).

        Keys: each hyperparameter (``"lr"`` ...) as a 0-d float64 array, ``"t"``
        as a 0-d int64 array, and ``"<buffer>/<param name>"`` (``"v/W1"``,
        ``"m/W1"`` ...) for each state buffer, with the parameter's shape and dtype.
        """
        state: dict[str, np.ndarray] = {
            h: np.array(float(getattr(self, h)), dtype=np.float64) for h in self._hyper
        }
        state["t"] = np.array(self.t, dtype=np.int64)
        for buf in self._buffers:
            for key, arr in getattr(self, buf).items():
                # A copy: the caller may keep it while training mutates the live buffer.
                state[f"{buf}/{key}"] = arr.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore hyperparameters, step count and buffers from ``state_dict()`` output.

        The arrays are copied.  A buffer whose dtype differs from its parameter's
        is cast on the next ``update`` (as torch does); a shape difference raises
        ShapeError there.

        Raises:
            CheckpointError: a key is missing or unknown (e.g. Adam state given to
                SGD), a value has the wrong kind or shape, or a hyperparameter is
                out of range.  The optimiser is left unchanged.
        """
        where = f"{type(self).__name__}.load_state_dict"
        missing = [k for k in (*self._hyper, "t") if k not in state]
        if missing:
            raise CheckpointError(f"{where}: state lacks {missing}")
        hyper = self._loaded_hyperparams(state, where)
        t = self._loaded_step_count(state, where)
        buffers = self._loaded_buffers(state, where)
        # Everything checked: commit all at once so a failed load changes nothing.
        for h, value in hyper.items():
            setattr(self, h, value)
        self.t = t
        for buf, arrays in buffers.items():
            setattr(self, buf, arrays)

    def _loaded_hyperparams(self, state: Mapping[str, Any], where: str) -> dict[str, float]:
        """Each hyperparameter of ``state``, checked: a 0-d number in its range."""
        hyper: dict[str, float] = {}
        for h in self._hyper:
            arr = np.asarray(state[h])
            if arr.shape != () or arr.dtype.kind not in "iuf":
                raise CheckpointError(
                    f"{where}: state[{h!r}] must be a 0-d number, got shape {arr.shape} "
                    f"dtype {arr.dtype}"
                )
            try:
                hyper[h] = self._check_hyper(h, arr.item())
            except ValueError as exc:
                raise CheckpointError(f"{where}: {exc}") from exc
        return hyper

    @staticmethod
    def _loaded_step_count(state: Mapping[str, Any], where: str) -> int:
        """``state["t"]``, checked: a 0-d integer >= 0."""
        t = np.asarray(state["t"])
        if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
            raise CheckpointError(f"{where}: state['t'] must be a 0-d integer >= 0, got {t!r}")
        return int(t)

    def _loaded_buffers(
        self, state: Mapping[str, Any], where: str
    ) -> dict[str, dict[str, np.ndarray]]:
        """Copies of the ``"<buffer>/<param name>"`` arrays of ``state``, by buffer; any
        other key that is neither a hyperparameter nor ``"t"`` is refused."""
        buffers: dict[str, dict[str, np.ndarray]] = {buf: {} for buf in self._buffers}
        unknown = []
        for name, value in state.items():
            if name in self._hyper or name == "t":
                continue
            buf, sep, key = name.partition("/")
            if not sep or buf not in buffers or not key:
                unknown.append(name)
                continue
            arr = np.asarray(value)
            if arr.dtype.kind != "f":
                raise CheckpointError(
                    f"{where}: state[{name!r}] must be floating point, got dtype {arr.dtype}"
                )
            buffers[buf][key] = np.array(arr, copy=True)
        if unknown:
            raise CheckpointError(
                f"{where}: unknown keys {sorted(unknown)} (state of another optimiser?); "
                f"{type(self).__name__} expects {[*self._hyper, 't']} and buffers "
                f"{list(self._buffers)}"
            )
        self._check_buffers_match(buffers, where)
        return buffers

    def _check_buffers_match(self, buffers: dict[str, dict[str, np.ndarray]], where: str) -> None:
        """Buffers of one parameter travel together (Adam's m and v): a half-present set,
        or two shapes for one parameter, means the state was edited or cut."""
        if len(self._buffers) < 2:
            return
        first, *rest = self._buffers
        for other in rest:
            if buffers[first].keys() != buffers[other].keys():
                raise CheckpointError(
                    f"{where}: buffers {first!r} and {other!r} name different "
                    f"parameters: {sorted(buffers[first])} vs {sorted(buffers[other])}"
                )
            for key in buffers[first]:
                a, b = buffers[first][key], buffers[other][key]
                if a.shape != b.shape:
                    raise CheckpointError(
                        f"{where}: '{first}/{key}' has shape {a.shape} but "
                        f"'{other}/{key}' has shape {b.shape}"
                    )

    def __repr__(self) -> str:
        args = ", ".join(f"{h}={getattr(self, h)!r}" for h in self._hyper)
        return f"{type(self).__name__}({args})"

    # -- subclass hooks ---------------------------------------------------------------

    @classmethod
    def _check_hyper(cls, name: str, value: Any) -> float:
        """Validate one hyperparameter by name: lr and eps > 0, the rest in [0, 1)."""
        if name in ("lr", "eps"):
            return _positive(name, value)
        return _unit_interval(name, value)

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------

    def _validate(self, params: Mapping[str, Any], grads: Mapping[str, Any]) -> None:
        """Check everything before touching anything, so a bad call changes nothing."""
        if params.keys() != grads.keys():
            missing = sorted(set(params) - set(grads))
            extra = sorted(set(grads) - set(params))
            raise ShapeError(
                "grads must have the same keys as params: "
                f"missing from grads {missing}, not in params {extra}"
            )
        for key, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                what = f"ndarray of {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__
                raise TypeError(
                    f"params[{key!r}] must be a floating-point numpy array or a number, got {what}"
                )
            if not p.flags.writeable:
                raise TypeError(f"params[{key!r}] is read-only; the update is done in place")
            g = grads[key]
            if not isinstance(g, np.ndarray) and not _is_real_number(g):
                raise TypeError(
                    f"grads[{key!r}] must be a numpy array or a number, got {type(g).__name__}"
                )
            if np.shape(g) != p.shape:
                raise ShapeError(
                    f"grads[{key!r}] has shape {np.shape(g)} but params[{key!r}] has shape "
                    f"{p.shape}"
                )
            for buf in self._buffers:
                store = getattr(self, buf)
                arr = store.get(key)
                if arr is None:
                    continue
                if arr.shape != p.shape:
                    raise ShapeError(
                        f"optimizer state '{buf}/{key}' has shape {arr.shape} but "
                        f"params[{key!r}] has shape {p.shape} (state from another network?)"
                    )
                if arr.dtype != p.dtype:
                    # Happens once, after loading state saved with another dtype.
                    store[key] = arr.astype(p.dtype)

    def _tmp(self, key: str, p: np.ndarray) -> np.ndarray:
        """The scratch array for ``key``: allocated once, reallocated only if p changes."""
        tmp = self._scratch.get(key)
        if tmp is None or tmp.shape != p.shape or tmp.dtype != p.dtype:
            tmp = self._scratch[key] = np.empty_like(p)
        return tmp

    @staticmethod
    def _buf(store: dict[str, np.ndarray], key: str, p: np.ndarray) -> np.ndarray:
        """The state buffer for ``key`` in ``store``, zeros like ``p`` on first use."""
        arr = store.get(key)
        if arr is None:
            arr = store[key] = np.zeros_like(p)
        return arr


# --------------------------------------------------------------------------- optimisers


_BLOCK = 65536  # values per block of SGD's update of a large array (256 KiB of float32)


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= lr * g``.

    Identical to the book's ``SGD`` (bit for bit: the same two operations).  Equal
    to ``torch.optim.SGD(lr=lr)`` up to the last bit: torch evaluates
    ``p + (-lr)*g`` as one fused multiply-add, rounding once where this rounds twice.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr=lr)
        self._block: np.ndarray | None = None  # the scratch block for large arrays

    def train_step(self, model: Any, params: dict[str, Any], x: np.ndarray, t: np.ndarray) -> float:
        """:meth:`Optimizer.train_step`; where ``model`` has the engine's fused
        ``sgd_step(x, t, lr)`` (:meth:`chainrule.engine.Step.sgd_step`), that one pass
        instead: the same step up to rounding, and nothing updated when the loss is not
        finite. Only plain SGD takes it: a subclass may have changed what a step does."""
        fused = getattr(model, "sgd_step", None)
        if type(self) is not SGD or fused is None:
            return super().train_step(model, params, x, t)
        loss = fused(x, t, self.lr)
        self.t += 1  # as update() counts its steps
        return loss

    def _block_tmp(self, p: np.ndarray) -> np.ndarray:
        """A scratch block of :data:`_BLOCK` values of p's dtype, shared by all params."""
        tmp = self._block
        if tmp is None or tmp.dtype != p.dtype:
            tmp = self._block = np.empty(_BLOCK, p.dtype)
        return tmp

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr = self.lr
        for key, p in params.items():
            g = grads[key]
            if p.size > _BLOCK and p.flags.c_contiguous and g.flags.c_contiguous:
                # A large array a block at a time, so that lr·g is still in the cache when
                # it is subtracted (docs/performance.md). Same numbers.
                flat_p, flat_g = p.reshape(-1), g.reshape(-1)
                tmp = self._block_tmp(flat_p)
                for start in range(0, p.size, _BLOCK):
                    part = flat_p[start : start + _BLOCK]
                    scaled = np.multiply(flat_g[start : start + _BLOCK], lr, out=tmp[: len(part)])
                    part -= scaled
            else:
                tmp = self._tmp(key, p)
                np.multiply(g, lr, out=tmp)
                p -= tmp


class Momentum(Optimizer):
    """Momentum SGD, the book's formulation: ``v = momentum*v - lr*g; p += v``.

    ``v`` (attribute ``v``, state ``"v/<key>"``) starts at zero.  The ops are the
    book's, so results equal the book's ``Momentum`` bit for bit.

    Relation to ``torch.optim.SGD(lr, momentum, dampening=0)``, which keeps
    ``buf = momentum*buf + g`` (``buf = g`` on the first step) and does
    ``p -= lr*buf``: with a constant ``lr``, ``v == -lr*buf`` in exact arithmetic,
    so the parameter trajectories agree to rounding (a few ulps per step; the
    tests check 1e-12 relative in float64 after 5 steps), not bit for bit,
    because ``lr`` is multiplied in at a different place.  If ``lr`` changes
    between steps the two differ: here the velocity keeps the old learning
    rate's steps, in torch the new ``lr`` scales the whole buffer.
    """

    name = "momentum"
    _hyper = ("lr", "momentum")
    _buffers = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr=lr, momentum=momentum)
        self.v: dict[str, np.ndarray]

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, mu = self.lr, self.momentum
        for key, p in params.items():
            v = self._buf(self.v, key, p)
            tmp = self._tmp(key, p)
            v *= mu
            np.multiply(grads[key], lr, out=tmp)
            v -= tmp
            p += v


class Nesterov(Momentum):
    """Nesterov accelerated gradient, in the form torch's ``nesterov=True`` uses.

    Momentum's hyperparameters and velocity ``v``, with another update rule.

    With velocity ``v`` (zero at start)::

        v = momentum*v - lr*g
        p += momentum*v - lr*g        # == momentum**2 * v_old - (1+momentum)*lr*g

    This is the reformulation of Bengio et al. (arXiv:1212.0901, the paper the
    book cites), with the velocity from *before* this step, and equals
    ``torch.optim.SGD(lr, momentum, dampening=0, nesterov=True)`` (whose buffer is
    ``buf = -v/lr``) to rounding, for a constant ``lr``.

    The book's ``Nesterov`` differs: it does ``p += momentum**2 * v_new -
    (1+momentum)*lr*g`` with the *updated* velocity, i.e. ``momentum**3 * v_old -
    (1+momentum+momentum**2)*lr*g`` where the paper has ``momentum**2 * v_old -
    (1+momentum)*lr*g``.  That is neither the paper's rule nor torch's, so this
    class does not reproduce the book's numbers, from the first step on (from
    ``v = 0`` the book moves ``-(1+momentum+momentum**2)*lr*g``, this
    ``-(1+momentum)*lr*g``).
    """

    name = "nesterov"

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, mu = self.lr, self.momentum
        for key, p in params.items():
            v = self._buf(self.v, key, p)
            tmp = self._tmp(key, p)
            np.multiply(grads[key], lr, out=tmp)  # tmp = lr*g, used twice
            v *= mu
            v -= tmp
            p -= tmp
            np.multiply(v, mu, out=tmp)
            p += tmp


def _step_by_root_mean_square(
    p: np.ndarray, g: np.ndarray, h: np.ndarray, lr: float, eps: float, tmp: np.ndarray
) -> None:
    """AdaGrad's and RMSprop's shared last step, ``p -= lr * g / (sqrt(h) + eps)``, in ``tmp``."""
    np.sqrt(h, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


class AdaGrad(Optimizer):
    """AdaGrad: ``h += g*g; p -= lr * g / (sqrt(h) + eps)``.

    Computed as ``torch.optim.Adagrad(lr, eps=1e-10)`` does (``lr_decay=0``,
    ``initial_accumulator_value=0``): the same formula, the same order of
    operations, and torch's default ``eps=1e-10``; equal to the last bit or so
    (torch fuses the final multiply-add).

    Difference from the book's ``AdaGrad``: the book hard-codes ``eps=1e-7`` and
    computes ``(lr*g) / (sqrt(h) + eps)`` where this does ``lr * (g / (sqrt(h) +
    eps))``.  ``AdaGrad(lr, eps=1e-7)`` gives the book's results up to rounding.
    """

    name = "adagrad"
    _hyper = ("lr", "eps")
    _buffers = ("h",)

    def __init__(self, lr: float = 0.01, *, eps: float = 1e-10) -> None:
        super().__init__(lr=lr, eps=eps)
        self.h: dict[str, np.ndarray]

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, eps = self.lr, self.eps
        for key, p in params.items():
            g = grads[key]
            h = self._buf(self.h, key, p)
            tmp = self._tmp(key, p)
            np.multiply(g, g, out=tmp)
            h += tmp
            _step_by_root_mean_square(p, g, h, lr, eps, tmp)


class RMSprop(Optimizer):
    """RMSprop: ``h = decay_rate*h + (1-decay_rate)*g*g; p -= lr * g / (sqrt(h) + eps)``.

    Equals ``torch.optim.RMSprop(lr, alpha=decay_rate, eps=1e-8)`` (``momentum=0``,
    ``centered=False``) to rounding: the same formula with torch's default
    ``eps=1e-8``.

    Difference from the book's ``RMSprop``: the book hard-codes ``eps=1e-7``
    (``RMSprop(lr, decay_rate, eps=1e-7)`` gives its results up to rounding).
    """

    name = "rmsprop"
    _hyper = ("lr", "decay_rate", "eps")
    _buffers = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, *, eps: float = 1e-8) -> None:
        super().__init__(lr=lr, decay_rate=decay_rate, eps=eps)
        self.h: dict[str, np.ndarray]

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, rho, eps = self.lr, self.decay_rate, self.eps
        one_minus_rho = 1.0 - rho
        for key, p in params.items():
            g = grads[key]
            h = self._buf(self.h, key, p)
            tmp = self._tmp(key, p)
            h *= rho
            np.multiply(g, g, out=tmp)
            tmp *= one_minus_rho
            h += tmp
            _step_by_root_mean_square(p, g, h, lr, eps, tmp)


class Adam(Optimizer):
    """Adam (Kingma & Ba, arXiv:1412.6980, Algorithm 1), as ``torch.optim.Adam`` does it.

    At step ``t`` (1, 2, ...)::

        m += (1-beta1) * (g - m)              # == beta1*m + (1-beta1)*g
        v  = beta2*v + (1-beta2)*g*g
        p -= lr/(1-beta1**t) * m / (sqrt(v)/sqrt(1-beta2**t) + eps)

    i.e. ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected moments,
    evaluated in torch's order (``amsgrad=False``, ``weight_decay=0``), eps=1e-8.

    Difference from the book's ``Adam``: the book folds both corrections into
    ``lr_t = lr*sqrt(1-beta2**t)/(1-beta1**t)`` and adds ``eps=1e-7`` to the
    *uncorrected* ``sqrt(v)``, which equals this rule with a step-dependent
    ``eps_t = 1e-7 / sqrt(1-beta2**t)`` (about 3e-6 at t=1).  The moments obey the
    same recurrences (``m`` is even updated with the book's very operations).
    Results match torch to rounding (1e-12 relative checked over 5 steps).

    ``t`` is kept as attribute ``t`` (alias ``iter``, the book's name).
    """

    name = "adam"
    _hyper = ("lr", "beta1", "beta2", "eps")
    _buffers = ("m", "v")

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, *, eps: float = 1e-8
    ) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.m: dict[str, np.ndarray]
        self.v: dict[str, np.ndarray]

    @property
    def iter(self) -> int:
        """The book's name for the step count ``t``."""
        return self.t

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        b1, b2, eps, t = self.beta1, self.beta2, self.eps, self.t
        one_minus_b1, one_minus_b2 = 1.0 - b1, 1.0 - b2
        # Scalars computed once per step, exactly as torch computes them.
        step_size = self.lr / (1.0 - b1**t)
        bias_correction2_sqrt = (1.0 - b2**t) ** 0.5
        for key, p in params.items():
            g = grads[key]
            m = self._buf(self.m, key, p)
            v = self._buf(self.v, key, p)
            tmp = self._tmp(key, p)
            np.subtract(g, m, out=tmp)
            tmp *= one_minus_b1
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= one_minus_b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= bias_correction2_sqrt
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp


# --------------------------------------------------------------------------- factory


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)
}
"""Lower-case name -> optimiser class (``"sgd"``, ``"momentum"``, ... ``"adam"``)."""


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """Build an optimiser by case-insensitive name, e.g. ``make_optimizer("Adam", lr=1e-3)``.

    Args:
        name: one of the keys of ``OPTIMIZERS`` in any letter case.
        **params: the class's constructor arguments (``lr``, ``momentum`` ...).

    Raises:
        ValueError: unknown name (the message lists the valid ones), or a
            hyperparameter out of range.
        TypeError: an argument the chosen class does not take.
    """
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a str, got {type(name).__name__}")
    cls = OPTIMIZERS.get(name.strip().lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise TypeError(f"{cls.__name__} takes {', '.join(cls._hyper)}: {exc}") from exc
