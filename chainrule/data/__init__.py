"""Datasets for chainrule: the book's ``load_mnist``, an IDX reader, a verified downloader.

This package uses NumPy and the standard library only, and never prints: downloads
report progress through a ``progress(bytes_done, bytes_total_or_None)`` callback.

The downloader is imported from its module, ``from chainrule.data.download import
download``; it is not re-exported here, because a package attribute named ``download``
would hide the module ``chainrule.data.download`` of the same name.
"""

from chainrule.data.idx import read_idx, write_idx
from chainrule.data.mnist import (
    DATASETS,
    DatasetInfo,
    IdxFile,
    cache_dir,
    dataset_info,
    load_mnist,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "IdxFile",
    "cache_dir",
    "dataset_info",
    "load_mnist",
    "read_idx",
    "write_idx",
]
