"""Training curves: the smoothing, the files, and that matplotlib stays lazy."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from chainrule.train import Evaluation, History
from chainrule.viz.curves import plot_history, smooth


def test_smooth_is_a_trailing_mean():
    values = [1.0, 3.0, 5.0, 7.0]
    # window 2: [1], [1,3], [3,5], [5,7]
    np.testing.assert_allclose(smooth(values, 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(smooth(values, 1), values)


def history():
    evaluations = [
        Evaluation(epoch, epoch * 10, 1 / epoch, 0.5 + epoch / 10, 1.1 / epoch, 0.45 + epoch / 10)
        for epoch in (1, 2, 3)
    ]
    return History(losses=list(np.linspace(2.3, 0.3, 30)), evaluations=evaluations)


def test_png_and_svg(tmp_path):
    png = plot_history(history(), tmp_path / "curves.png", title="a run")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 480)  # 10 x 4 inches at 120 dpi
    svg = plot_history(history(), tmp_path / "curves.svg")
    text = svg.read_text()
    ET.fromstring(text)  # well-formed XML
    for label in ("step", "epoch", "accuracy", "train", "test"):
        assert label in text
    assert list(tmp_path.iterdir()) == [png, svg] or sorted(tmp_path.iterdir()) == sorted(
        [png, svg]
    )


@pytest.mark.parametrize("epochs", [2, 4])
def test_the_epoch_axis_has_whole_numbers_only(tmp_path, monkeypatch, epochs):
    from matplotlib.figure import Figure

    drawn = []  # the figure plot_history draws, kept as it is saved
    savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda fig, *a, **k: drawn.append(fig) or savefig(fig, *a, **k)
    )
    evaluations = [Evaluation(e, e * 10, 1 / e, 0.5, 1 / e, 0.5) for e in range(1, epochs + 1)]
    plot_history(History(list(np.linspace(2.3, 0.3, 10 * epochs)), evaluations), tmp_path / "c.png")
    accuracy_axes = drawn[0].axes[1]
    assert accuracy_axes.get_xlabel() == "epoch"
    ticks = accuracy_axes.get_xticks()
    assert len(ticks) >= 2 and all(tick == int(tick) for tick in ticks), ticks


def test_unknown_extension_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="png"):
        plot_history(history(), tmp_path / "curves.jpg")
    assert list(tmp_path.iterdir()) == []


def test_importing_chainrule_does_not_import_matplotlib_or_tqdm():
    code = (
        "import sys, chainrule, chainrule.train, chainrule.cli; "
        "print('matplotlib' in sys.modules, 'tqdm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
