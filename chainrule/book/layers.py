"""Stand-in for the book's ``common/layers.py``: chainrule's layers, three adapted.

- ``Dropout`` draws its masks from NumPy's global generator (``np.random.rand``), as the
  book's does, so a seeded script draws the same masks;
- ``SoftmaxWithLoss.forward`` returns the book's loss value (``+ 1e-7`` inside the log);
  its backward, ``(y − t)/N``, is the same on both;
- ``BatchNormalization`` starts its running variance at 0, as the book's (chainrule's
  starts it at 1), so inference during the first steps gives the book's numbers.

``from common.layers import *`` also gives what the book's module imports: ``np``, the
functions of ``common.functions``, ``im2col`` and ``col2im``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import layers as _layers
from chainrule import losses as _losses
from chainrule.book.functions import *  # noqa: F403 (the book's layers export them too)
from chainrule.book.functions import __all__ as _function_names
from chainrule.book.functions import cross_entropy_error
from chainrule.book.globalrng import GLOBAL_GENERATOR
from chainrule.layers import Affine, Convolution, Pooling, Relu, Sigmoid
from chainrule.util import col2im, im2col

__all__ = [
    *_function_names,
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "im2col",
]


class Dropout(_layers.Dropout):
    """chainrule's Dropout with the book's signature, drawing as the book's does."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        super().__init__(dropout_ratio)
        self.rng = GLOBAL_GENERATOR


class SoftmaxWithLoss(_losses.SoftmaxWithLoss):
    """chainrule's SoftmaxWithLoss whose forward returns the book's loss value."""

    def forward(self, x: Any, t: Any) -> Any:
        super().forward(x, t)
        self.loss = cross_entropy_error(self.y, t)
        return self.loss


class BatchNormalization(_layers.BatchNormalization):
    """chainrule's BatchNormalization whose running variance starts at 0, as the book's."""

    def forward(self, x: Any, train_flg: bool = True) -> np.ndarray:
        if self.running_var is None:
            self.running_var = np.zeros(len(self.gamma), np.result_type(self.gamma, np.float32))
        return super().forward(x, train_flg)
