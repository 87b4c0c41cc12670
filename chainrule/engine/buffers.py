"""Arrays kept from one step to the next, so that a step allocates nothing large."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

__all__ = ["Buffers"]


class Buffers:
    """A kernel's arrays by name: :meth:`get` hands back the array it made last time for
    that name, and makes a new one only when the shape, dtype or memory order changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._made_like: dict[str, tuple[Any, ...]] = {}  # what like() made each one for
        self._threads: dict[int, Buffers] = {}

    def for_thread(self) -> Buffers:
        """Arrays of the calling thread's own, kept with these: for workers that fill
        arrays of one name side by side."""
        key = threading.get_ident()
        child = self._threads.get(key)
        return child if child is not None else self._threads.setdefault(key, Buffers())

    def get(self, name: str, shape: tuple[int, ...], dtype: Any, *, fill: Any = None) -> np.ndarray:
        """A C-ordered array of ``shape``; ``fill`` is written once, when it is made (a
        padding border or a row of ones that no step overwrites)."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self._arrays[name] = array
        return array

    def front(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An array of ``shape`` at the front of one kept for ``name``, which only grows:
        for chunks of a batch, where the last one is smaller than the others."""
        size = math.prod(shape)
        store = self._arrays.get(name)
        if store is None or store.size < size or store.dtype != dtype:
            store = self._arrays[name] = np.empty(size, dtype)
        return store[:size].reshape(shape)

    def like(self, name: str, x: np.ndarray, dtype: Any = None) -> np.ndarray:
        """An array of ``x``'s shape laid out in memory as ``x`` is (channels last for a
        convolution's output), so that element-wise work on the two runs straight."""
        dtype = x.dtype if dtype is None else np.dtype(dtype)
        key = (x.shape, x.strides, x.dtype, dtype)
        if self._made_like.get(name) != key:
            self._arrays[name] = np.empty_like(x, dtype=dtype)
            self._made_like[name] = key
        return self._arrays[name]

    def images(
        self, name: str, shape: tuple[int, int, int, int], dtype: Any, *, fill: Any = None
    ) -> np.ndarray:
        """Images (N, C, H, W) stored channels last, (N, H, W, C) in memory: the layout
        the convolutions' products write."""
        n, c, h, w = shape
        return self.get(name, (n, h, w, c), dtype, fill=fill).transpose(0, 3, 1, 2)


def channels_last(x: np.ndarray) -> bool:
    """Whether images x (N, C, H, W) are stored as a C-ordered (N, H, W, C)."""
    return x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous
