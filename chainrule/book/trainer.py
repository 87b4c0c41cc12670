"""Stand-in for the book's ``common/trainer.py``: :class:`chainrule.train.Trainer`
running the book's loop (``sampling="book"``) with the book's optimisers.

``from common.trainer import *`` also gives the optimisers and ``np``, as the book's
module (which imports ``common.optimizer`` with ``*``) does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import train
from chainrule.book.optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "Trainer", "np"]

_BOOK_OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


class Trainer(train.Trainer):
    """The book's ``Trainer``, with its signature, loop, optimisers and printing."""

    optimizer_classes = _BOOK_OPTIMIZERS

    def __init__(
        self,
        network: Any,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: dict[str, float] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__(
            network, x_train, t_train, x_test, t_test, epochs, mini_batch_size, optimizer,
            optimizer_param, evaluate_sample_num_per_epoch, verbose, sampling="book",
        )  # fmt: skip
