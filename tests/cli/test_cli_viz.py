"""`chainrule graph`, `chainrule explain` and `chainrule show-weights` from the command line."""

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.viz.diagram import find_renderer

needs_renderer = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer")


def test_graph_prints_dot_with_the_books_numbers(capsys):
    assert main(["graph", "apple-orange"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph")
    # The book's apple-orange example (chapter 5): values and gradients.
    for number in ("715", "650", "3.3", "165", "110", "2.2"):
        assert number in dot


def test_graph_without_gradients(capsys):
    assert main(["graph", "apple", "--no-grad"]) == 0
    dot = capsys.readouterr().out
    assert "220" in dot and "200" in dot
    assert "2.2" not in dot and "110" not in dot  # gradients of apple and apple count


@needs_renderer
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_graph_renders_files(tmp_path, capsys, suffix):
    out = tmp_path / f"g{suffix}"
    assert main(["graph", "two-layer-net", "--hidden", "8", "-o", str(out)]) == 0
    data = out.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        text = ET.tostring(ET.fromstring(data), encoding="unicode")
        assert "Affine1" in text and "784" in text


def test_graph_without_renderer_says_how(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr("chainrule.viz.diagram.find_renderer", lambda: None)
    assert main(["graph", "apple", "-o", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "graphviz" in err.lower()
    assert main(["graph", "apple", "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_explain_apple_orange_shows_each_local_derivative(capsys):
    assert main(["explain", "apple-orange"]) == 0
    out = capsys.readouterr().out
    assert "∂z/∂x = y" in out and "dout · y = 1 · 1.1 = 1.1" in out
    backward = out.split("Backward pass", 1)[1]  # runs from the output back
    assert backward.index("price = all price × tax") < backward.index("all price = apple price +")


@pytest.mark.parametrize(
    ("name", "last_line"),
    [
        # The book's examples of chapter 5: 100 × 2 × 1.1 = 220, (100 × 2 + 150 × 3) × 1.1 = 715.
        ("apple", "price = apple price × tax = 200 × 1.1 = 220"),
        ("apple-orange", "price = all price × tax = 650 × 1.1 = 715"),
    ],
)
def test_explain_shows_the_forward_pass_first(capsys, name, last_line):
    assert main(["explain", name]) == 0
    forward, backward = capsys.readouterr().out.split("Backward pass", 1)
    assert forward.startswith("Forward pass")
    assert forward.rstrip().splitlines()[-1] == "    " + last_line
    assert "Start: ∂price/∂price = 1" in backward


def test_explain_two_layer_net_shows_affine_shapes(capsys):
    assert main(["explain", "two-layer-net", "--samples", "3", "--hidden", "7"]) == 0
    out = capsys.readouterr().out
    assert "dW (784×7) = Xᵀ (784×3) · dout (3×7)" in out
    assert "dX (3×7) = dout (3×10) · Wᵀ (10×7)" in out


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["explain", "apple", "--hidden", "3"], "--hidden does not apply to apple, a shopping"),
        (["graph", "apple-orange", "--seed", "1", "--samples", "3"], "--samples, --seed do not"),
        (["explain", "two-layer-net", "--activation", "sigmoid"], "the book's TwoLayerNet with"),
        (["explain", "two-layer-net", "--hidden", "4", "5"], "two-layer-net has one hidden"),
    ],
    ids=["apple-hidden", "apple-orange-seed", "two-layer-net-sigmoid", "two-layer-net-sizes"],
)
def test_network_flags_an_example_has_no_use_for_are_refused(usage_error, args, answer):
    assert answer in usage_error(args)


def test_layers_alone_shapes_the_multi_layer_example(capsys):
    assert main(["explain", "multi-layer-net", "--layers", "3", "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "Affine4" in out and "Affine5" not in out  # three hidden layers, one output layer


def test_show_weights(tmp_path, capsys):
    checkpoint, picture = tmp_path / "run.npz", tmp_path / "w.png"
    assert (
        main(["train", "--quiet", "--iters", "5", "--hidden", "12", "--save", str(checkpoint)]) == 0
    )
    assert main(["show-weights", str(checkpoint), "-o", str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args", [["graph", "banana"], ["explain"], ["show-weights", "x.npz"]])
def test_bad_arguments_exit_two(args, usage_error):
    assert usage_error(args).startswith("chainrule ")


def test_show_weights_draws_a_convnets_filters_before_and_after(tmp_path, capsys):
    from chainrule.checkpoint import load_checkpoint
    from chainrule.cli.pictures import _initial_filters
    from chainrule.networks import SimpleConvNet

    checkpoint, picture = tmp_path / "conv.npz", tmp_path / "filters.png"
    args = ["train", "--quiet", "--model", "convnet", "--iters", "2", "--seed", "3"]
    assert main([*args, "--save", str(checkpoint)]) == 0
    assert main(["show-weights", str(checkpoint), "-o", str(picture), "--before"]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    # the "before" panel is the run's own start: the same seed and initial scale
    fresh = SimpleConvNet(weight_init_std=0.01, dtype="float32", seed=3).params["W1"]
    np.testing.assert_array_equal(_initial_filters(load_checkpoint(checkpoint), "x"), fresh)
    assert main(["show-weights", str(checkpoint), "-o", str(tmp_path / "after.svg")]) == 0


def test_show_weights_before_needs_a_convnet(tmp_path, usage_error):
    checkpoint = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--iters", "2", "--save", str(checkpoint)]) == 0
    line = usage_error(["show-weights", str(checkpoint), "-o", str(tmp_path / "w.png"), "--before"])
    assert "--before draws a convnet's filters" in line


def test_convnet_example_shows_its_convolution_and_pooling_nodes_with_shapes(tmp_path, capsys):
    assert main(["explain", "convnet"]) == 0
    out = capsys.readouterr().out
    assert "Conv1 = Conv(x) = (2×30×24×24)" in out
    assert "Pool1 = Pooling(Relu1) = (2×30×12×12)" in out
    assert "dW (4320×100) = Xᵀ (4320×2) · dout (2×100)" in out  # images as rows
    assert "dW (30×1×5×5) = colᵀ · dout (2×30×24×24)" in out
    dot = tmp_path / "convnet.dot"
    assert main(["graph", "convnet", "-o", str(dot)]) == 0
    text = dot.read_text()
    assert "Conv1" in text and "Max pool" in text and "2×30×12×12" in text
    assert "SimpleConvNet(1×28×28, conv 30 5×5, pool 2×2, 100, 10)" in text


def test_convnet_example_refuses_the_fully_connected_flags(usage_error):
    line = usage_error(["graph", "convnet", "--hidden", "20"])
    assert "--hidden does not apply to convnet" in line


def test_explain_takes_the_examples_inputs_as_flags(capsys):
    assert main(["explain", "sigmoid", "--x", "2"]) == 0
    out = capsys.readouterr().out
    # y = 1 / (1 + exp(-2)) = 0.880797; dy/dx = y(1 - y) = 0.104994
    assert "    y = 1 / v₃ = 1 / 1.13534 = 0.880797\n" in out and "∂y/∂x  0.104994" in out
    assert main(["explain", "apple", "--apple", "120", "--tax", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "price = apple price × tax = 240 × 1.5 = 360" in out  # 120 × 2 × 1.5
    assert main(["explain", "affine", "--X", "1,0;0,1"]) == 0  # X = I: X · W is W itself
    assert "    X · W = dot(X, W) = (2×3) [[0.1, 0.2, 0.3],\n" in capsys.readouterr().out


@needs_renderer
def test_graph_takes_them_too_and_its_title_follows(capsys):
    assert main(["graph", "apple-orange", "--apple", "120"]) == 0
    # (120 × 2 + 150 × 3) × 1.1 = 759
    assert "(120 × 2 + 150 × 3) × 1.1 = 759" in capsys.readouterr().out


def test_the_input_flags_are_listed_and_checked(capsys, usage_error):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    listed = capsys.readouterr().out
    for flag in ("--apple ", "--apple-count", "--orange-count", "--tax", "--x ", "--X ", "--W "):
        assert flag in listed, flag
    assert "--x does not apply to apple; its inputs are --apple, --apple-count, --tax" in (
        usage_error(["explain", "apple", "--x", "2"])
    )
    assert "--apple takes a finite number, got 'abc'" in usage_error(
        ["explain", "apple", "--apple", "abc"]
    )
    assert "--x takes a finite number, got 'nan'" in usage_error(["graph", "sigmoid", "--x", "nan"])
    assert "--X takes a 2×2 array" in usage_error(["explain", "affine", "--X", "1,2,3"])
    assert "has no inputs to set" in usage_error(["explain", "two-layer-net", "--x", "1"])
    assert "did you mean --apple" in usage_error(["explain", "apple", "--aple", "1"])


@pytest.mark.parametrize(
    "args",
    [
        ["graph", "two-layer-net", "--hidden", "100000000"],
        ["explain", "multi-layer-net", "--hidden", "50", "--layers", "100000"],
        ["graph", "two-layer-net", "--samples", "100000000"],
    ],
)
def test_a_network_too_large_to_picture_is_a_usage_error(args, usage_error):
    assert "at most" in usage_error(args)


@pytest.mark.skipif(not hasattr(__import__("os"), "fsencode"), reason="POSIX file names")
def test_show_weights_titles_a_file_name_that_is_not_utf8(tmp_path, capsys):
    import os

    trained = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--iters", "2", "--hidden", "8", "--save", str(trained)]) == 0
    checkpoint = os.fsdecode(os.fsencode(tmp_path) + b"/run-\xff.npz")  # as argv gives it
    os.rename(trained, checkpoint)
    picture = tmp_path / "w.svg"
    assert main(["show-weights", checkpoint, "-o", str(picture)]) == 0
    assert "run-\\xff.npz" in picture.read_text(encoding="utf-8")
