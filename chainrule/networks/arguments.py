"""Checks of the networks' constructor arguments, each naming the argument it rejects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule.errors import ArgumentError

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _network_dtype(dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ArgumentError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _DTYPES:
        raise ArgumentError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _image_shape(input_dim: Any) -> tuple[int, int, int]:
    """One image's (C, H, W), each a positive integer."""
    if len(input_dim) != 3:
        raise ArgumentError(f"input_dim must be one image's (C, H, W), got {input_dim!r}")
    channels, height, width = (_positive_int("input_dim", d) for d in input_dim)
    return channels, height, width


def _known_keys(name: str, given: Mapping[str, Any], book: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over the book's values; a key the book's has not is an ArgumentError."""
    unknown = sorted(set(given) - set(book))
    if unknown:
        raise ArgumentError(f"{name}: unknown {unknown}; it takes {', '.join(book)}")
    return {**book, **given}


def _conv_param(name: str, given: Mapping[str, int], book: Mapping[str, int]) -> dict[str, int]:
    """A convolution's parameters, the book's where ``given`` leaves one out."""
    param = _known_keys(name, given, book)
    for key in ("filter_num", "filter_size", "stride"):
        _positive_int(f"{name}[{key!r}]", param[key])
    if (
        isinstance(param["pad"], bool)
        or not isinstance(param["pad"], (int, np.integer))
        or param["pad"] < 0
    ):
        raise ArgumentError(f"{name}['pad'] must be an integer >= 0, got {param['pad']!r}")
    return {key: int(value) for key, value in param.items()}
