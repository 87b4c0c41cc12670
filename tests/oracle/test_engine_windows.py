"""strided_view, the engine's as_strided: the same view of memory in one block (C- or
channels-last-ordered) and of memory that is not (where it falls back to as_strided),
read-only, and an offset only into one block."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from chainrule.engine.windows import strided_view


def _images(layout):
    x = np.arange(2 * 3 * 5 * 4, dtype=np.float32).reshape(2, 3, 5, 4)
    if layout == "channels last":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "strided":
        return np.arange(2 * 3 * 10 * 4, dtype=np.float32).reshape(2, 3, 10, 4)[:, :, ::2]
    return x


@pytest.mark.parametrize("layout", ["C", "channels last", "strided"])
def test_the_same_view_as_as_strided(layout):
    x = _images(layout)
    sN, sC, sH, sW = x.strides
    shape, strides = (2, 4, 3, 2, 2, 3), (sN, sH, sW, sH, sW, sC)  # 2×2 windows
    view = strided_view(x, shape, strides)
    np.testing.assert_array_equal(view, as_strided(x, shape, strides))
    assert not view.flags.writeable


def test_an_offset_into_one_block():
    x = _images("channels last")
    sN, sC, sH, sW = x.strides
    shape, strides = (2, 4, 3, 3), (sN, sH, sW, sC)
    view = strided_view(x, shape, strides, sH + sW)
    np.testing.assert_array_equal(view, x[:, :, 1:, 1:].transpose(0, 2, 3, 1))
    with pytest.raises(ValueError):
        strided_view(_images("strided"), shape, strides, sH)
