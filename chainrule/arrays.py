"""Array helpers shared by the nodes: the real-number check and reusable buffers.

A ``Workspace`` is a dict, owned by the caller, where a node keeps its output and gradient
arrays from call to call (see :mod:`chainrule.layers` for which arrays may be reused).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import DTypeError

__all__ = ["Workspace", "buffer", "check_real", "ones", "rows_index"]


def check_real(node: str, what: str, value: Any) -> None:
    """Raise DTypeError unless ``value`` holds real numbers (bool, int or float)."""
    dtype = np.asarray(value).dtype
    if dtype.kind not in "biuf":
        raise DTypeError(f"{node}: {what} must hold real numbers, got dtype {dtype}")


Workspace = dict[str, np.ndarray]
"""Arrays a layer reuses from call to call, by role (``"out"``, ``"dx"``, ``"dW"`` ...)."""


def buffer(workspace: Workspace | None, role: str, shape: tuple[int, ...], dtype: Any) -> Any:
    """``workspace[role]``, made anew if missing or of another shape or dtype; for ``out=``.

    Without a workspace it returns None, and a NumPy function given ``out=None``
    allocates its result as usual.
    """
    if workspace is None:
        return None
    array = workspace.get(role)
    if array is None or array.shape != shape or array.dtype != dtype:
        array = workspace[role] = np.empty(shape, dtype)
    return array


def rows_index(batch_size: int, workspace: Workspace) -> np.ndarray:
    """``arange(batch_size)`` kept in ``workspace``: the index of each sample's row."""
    rows = workspace.get("rows")
    if rows is None or len(rows) != batch_size:
        rows = workspace["rows"] = np.arange(batch_size)
    return rows


def ones(workspace: Workspace, length: int, dtype: Any) -> np.ndarray:
    """A vector of ones kept in ``workspace``, to sum by BLAS.

    ``ones @ A`` adds up A's rows (one matrix-vector product): two to three times as fast
    as ``A.sum(axis=0)`` for a batch of gradients.
    """
    vector = workspace.get("ones")
    if vector is None or len(vector) != length or vector.dtype != dtype:
        vector = workspace["ones"] = np.ones(length, dtype)
    return vector
