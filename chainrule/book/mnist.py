"""Stand-in for the book's ``dataset/mnist.py``: ``load_mnist`` with the book's
signature, shapes and dtypes, from chainrule's data loading.

The book's downloads the four files from a mirror and caches them as ``mnist.pkl`` next
to itself; this one finds them as ``chainrule train --dataset mnist`` does (the folder
given with ``--data-dir``, chainrule's cache, a checksummed download) and writes no
pickle. ``chainrule run`` chooses the dataset with :func:`use`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from chainrule.data import mnist as _data
from chainrule.errors import DataError

__all__ = ["load_mnist", "use"]

_source: dict[str, Any] = {"dataset": "mnist", "data_dir": None, "progress": None}

_FETCH = "get the files with 'chainrule fetch mnist DIR'"
_RUN_HINT = (
    "then 'chainrule run --data-dir DIR ...'; or run on the 5,000 digits inside chainrule "
    "with '--dataset mnist-5k'"
)


def use(
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    progress: Any = None,
) -> None:
    """Choose what ``load_mnist`` loads: one of :data:`chainrule.data.DATASETS`, from
    ``data_dir`` if given; ``progress`` as :func:`chainrule.data.load_mnist` takes it."""
    _data.dataset_info(dataset)  # an unknown name fails here
    _source.update(dataset=dataset, data_dir=data_dir, progress=progress)


def load_mnist(
    normalize: bool = True, flatten: bool = True, one_hot_label: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, t_train), (x_test, t_test))`` as the book's returns them: images
    float32 in [0, 1] (``normalize``) or uint8, (N, 784) (``flatten``) or (N, 1, 28, 28);
    labels uint8 (N,), or float64 one-hot rows (N, 10) with ``one_hot_label``."""
    try:
        train, test = _data.load_mnist(
            normalize,
            flatten,
            dataset=_source["dataset"],
            data_dir=_source["data_dir"],
            progress=_source["progress"],
        )
    except DataError as err:
        if not getattr(err, "__notes__", None):  # a corrupt file: its message says so
            raise
        message = str(err).rstrip(".")
        fetch = "" if "chainrule fetch" in message else f"{_FETCH}, "
        raise DataError(f"{message}; {fetch}{_RUN_HINT}") from err
    return _book_labels(*train, one_hot_label), _book_labels(*test, one_hot_label)


def _book_labels(x: np.ndarray, t: np.ndarray, one_hot: bool) -> tuple[np.ndarray, np.ndarray]:
    if not one_hot:
        return x, t.astype(np.uint8)
    rows = np.zeros((len(t), 10))
    rows[np.arange(len(t)), t] = 1.0
    return x, rows
