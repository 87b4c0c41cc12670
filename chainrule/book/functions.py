"""Stand-in for the book's ``common/functions.py``: its activation and loss functions.

``from common.functions import *`` also gives ``np``, as the book's does (its chapter 4
``two_layer_net.py`` uses ``np`` from it). The losses are the book's, ``1e-7`` added
inside the log included, so that they print the book's numbers; chainrule's own
``SoftmaxWithLoss`` leaves that guard out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.layers import sigmoid
from chainrule.losses import as_batch, softmax

__all__ = [
    "cross_entropy_error",
    "identity_function",
    "np",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]

_LOG_GUARD = 1e-7  # the book's guard against log(0)


def identity_function(x: Any) -> Any:
    """The output layer of a regression: the input unchanged."""
    return x


def step_function(x: Any) -> np.ndarray:
    """1 where ``x > 0``, else 0, as integers (the perceptron's activation)."""
    return np.array(np.asarray(x) > 0, dtype=int)


def sigmoid_grad(x: Any) -> Any:
    """The sigmoid's derivative at ``x``: ``σ(x)·(1 − σ(x))``."""
    y = sigmoid(x)
    return (1.0 - y) * y


def relu(x: Any) -> Any:
    """``max(0, x)``."""
    return np.maximum(0, x)


def relu_grad(x: Any) -> np.ndarray:
    """ReLU's derivative as the book takes it: 1 where ``x >= 0`` (at 0 too), else 0."""
    x = np.asarray(x)
    return (x >= 0).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def sum_squared_error(y: Any, t: Any) -> Any:
    """Half the sum of squared differences: ``0.5·Σ(y − t)²``."""
    return 0.5 * np.sum((np.asarray(y) - np.asarray(t)) ** 2)


def cross_entropy_error(y: Any, t: Any) -> Any:
    """The book's cross-entropy of probabilities ``y`` (N, C) or (C,) against labels or
    one-hot rows ``t``: ``−Σ log(y[label] + 1e-7) / N``."""
    y2, labels, one_hot = as_batch(y, t, node="cross_entropy_error", what="probabilities")
    if one_hot:
        labels = labels.argmax(axis=1)  # as the book: the largest entry of each row
    picked = y2[np.arange(len(y2)), labels]
    return -np.sum(np.log(picked + _LOG_GUARD)) / len(y2)


def softmax_loss(x: Any, t: Any) -> Any:
    """Cross-entropy of ``softmax(x)``: the loss the book's ``SoftmaxWithLoss`` reports."""
    return cross_entropy_error(softmax(np.asarray(x)), t)
