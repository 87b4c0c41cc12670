"""The first layer's weights as a grid of images: files, shapes refused, the grid's size."""

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from chainrule.errors import ShapeError
from chainrule.viz.weights import plot_weights, weight_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def test_png_of_mnist_shaped_weights(tmp_path):
    W = np.random.default_rng(0).normal(0, 0.01, (784, 50)).astype(np.float32)
    path = plot_weights(W, tmp_path / "w.png", title="W1 (784×50)")
    assert path == tmp_path / "w.png"
    width, height = png_size(path.read_bytes())
    assert 400 < width < 2000 and 200 < height < 1500
    assert width > height  # 5 rows of 10 units
    assert [p.name for p in tmp_path.iterdir()] == ["w.png"]  # no temporary file left


def test_svg_parses(tmp_path):
    W = np.random.default_rng(1).normal(size=(16, 5))  # 4×4 images
    path = plot_weights(W, tmp_path / "w.svg")
    assert ET.parse(path).getroot().tag.endswith("svg")


def test_refuses_a_non_square_number_of_pixels(tmp_path):
    with pytest.raises(ShapeError, match="square") as info:
        plot_weights(np.zeros((783, 10)), tmp_path / "w.png")
    assert "783" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_refuses_other_shapes_extensions_and_nan(tmp_path):
    with pytest.raises(ShapeError, match="2-d"):
        plot_weights(np.zeros(784), tmp_path / "w.png")
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot_weights(np.zeros((784, 2)), tmp_path / "w.jpg")
    W = np.zeros((784, 2))
    W[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plot_weights(W, tmp_path / "w.png")
    assert list(tmp_path.iterdir()) == []


def test_all_zero_weights_and_a_single_unit_draw(tmp_path):
    png_size(plot_weights(np.zeros((784, 1)), tmp_path / "one.png").read_bytes())


def test_grid_prefers_full_rows():
    assert weight_grid(50) == (5, 10)
    assert weight_grid(100) == (10, 10)
    assert weight_grid(16) == (4, 4)
    assert weight_grid(13) == (4, 4)
    assert weight_grid(200) == (20, 10)
    with pytest.raises(ValueError):
        weight_grid(0)
