"""NumPy's global generator (``np.random.rand``, which the book's ``Dropout`` draws its
masks from) behind the ``Generator`` methods chainrule's layers call."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GLOBAL_GENERATOR", "GlobalGenerator"]


class _GlobalState:
    """``bit_generator.state`` of the global generator, as a Generator has it."""

    @property
    def state(self) -> dict[str, Any]:
        return np.random.get_state(legacy=False)  # noqa: NPY002 (the book's generator)

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        np.random.set_state(value)  # noqa: NPY002


class GlobalGenerator:
    """``random`` draws what ``np.random.rand(*size)`` would, from the same stream."""

    bit_generator = _GlobalState()

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        if size is None and out is not None:  # as Generator.random: out gives the shape
            size = out.shape
        values = np.random.random_sample(size)  # noqa: NPY002 (the book's generator)
        if out is not None:
            out[...] = values
            return out
        return values.astype(dtype, copy=False)


GLOBAL_GENERATOR = GlobalGenerator()
