"""Stand-in for the book's ``common/optimizer.py``: the six optimisers, computing what
the book's compute.

``SGD`` and ``Momentum`` are chainrule's (their operations are the book's). For
``Nesterov``, ``AdaGrad``, ``RMSprop`` and ``Adam`` chainrule follows PyTorch's
formulations (see :mod:`chainrule.optim`); these subclasses keep chainrule's checks and
state and apply the book's rules instead, with its ε = 1e-7.
"""

from __future__ import annotations

import numpy as np

from chainrule import optim
from chainrule.optim import SGD, Momentum

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "np"]

_BOOK_EPS = 1e-7


class Nesterov(optim.Nesterov):
    """The book's Nesterov: ``v = μv − lr·g``, then ``p += μ²·v − (1 + μ)·lr·g`` with the
    new ``v``."""

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, mu = self.lr, self.momentum
        for key, p in params.items():
            v = self._buf(self.v, key, p)
            v *= mu
            v -= lr * grads[key]
            p += mu * mu * v
            p -= (1 + mu) * lr * grads[key]


class AdaGrad(optim.AdaGrad):
    """The book's AdaGrad: ``h += g²; p −= lr·g / (√h + 1e-7)``."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr, eps=_BOOK_EPS)

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, p in params.items():
            h = self._buf(self.h, key, p)
            h += grads[key] * grads[key]
            p -= self.lr * grads[key] / (np.sqrt(h) + self.eps)


class RMSprop(optim.RMSprop):
    """The book's RMSprop: ``h = ρh + (1 − ρ)g²; p −= lr·g / (√h + 1e-7)``."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        super().__init__(lr, decay_rate, eps=_BOOK_EPS)

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, p in params.items():
            h = self._buf(self.h, key, p)
            h *= self.decay_rate
            h += (1 - self.decay_rate) * grads[key] * grads[key]
            p -= self.lr * grads[key] / (np.sqrt(h) + self.eps)


class Adam(optim.Adam):
    """The book's Adam: both bias corrections folded into the step size,
    ``lr_t = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)``, and 1e-7 added to the uncorrected ``√v``."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__(lr, beta1, beta2, eps=_BOOK_EPS)

    def _apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        b1, b2, t = self.beta1, self.beta2, self.t
        lr_t = self.lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        for key, p in params.items():
            g, m, v = grads[key], self._buf(self.m, key, p), self._buf(self.v, key, p)
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g**2 - v)
            p -= lr_t * m / (np.sqrt(v) + self.eps)
