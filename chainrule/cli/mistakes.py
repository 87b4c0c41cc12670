"""Chapter 8 seen: ``chainrule show-mistakes`` (the book's misclassified_mnist.py figure)
and ``chainrule evaluate --dtype float16`` (its half_float_network.py experiment).

Both take a chainrule checkpoint, or the book's pickled weights (read by
:mod:`chainrule.safepickle`, the network found from the arrays' shapes), and load the
data as ``chainrule evaluate`` does.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.cli.args import output_path, positive_int, suffixes
from chainrule.data import DATASETS

__all__ = [
    "add_parser",
    "cmd_half_float",
    "cmd_show_mistakes",
    "half_float_report",
    "network_from_file",
]

_FORMATS = ("png", "svg")
_CHUNK = 100  # images per forward pass


def network_from_file(path: str, activation: str = "relu") -> tuple[Any, str | None]:
    """The network in ``path`` with its weights, and the dataset it was trained on (None
    if the file does not say): a chainrule checkpoint, or the book's pickle."""
    from chainrule.book.weight_files import network_config
    from chainrule.cli.train_description import load_described
    from chainrule.networks import network_from_config
    from chainrule.safepickle import is_pickle, load_arrays
    from chainrule.training_state import restore_network

    if not is_pickle(path):
        checkpoint = load_described(path)  # checked as evaluate does
        return restore_network(checkpoint, path), checkpoint.meta.get("train", {}).get("dataset")
    params = load_arrays(path)
    network = network_from_config(network_config(params, activation, path))
    for key, param in network.params.items():
        param[...] = params[key]
    return network, "mnist"  # the book trains on the full MNIST


def test_data(
    network: Any, dataset: str, data_dir: str | None, quiet: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The test images (as the network takes them: (N, C, H, W) for a convnet) and labels."""
    from chainrule.cli.data import load_data

    flatten = len(getattr(network, "input_dim", ())) != 3
    return load_data(dataset, data_dir, quiet, flatten=flatten)[1]


def predictions(network: Any, x: np.ndarray) -> np.ndarray:
    """The class each image gets, ``_CHUNK`` images at a time (inference mode)."""
    predict = getattr(network, "predict_fast", network.predict)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.concatenate(
            [predict(x[i : i + _CHUNK]).argmax(axis=1) for i in range(0, len(x), _CHUNK)]
        )


def plot_mistakes(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: str | os.PathLike[str]
) -> Path:
    """The images in a grid of five columns, each titled with its predicted and true label."""
    from matplotlib.figure import Figure

    from chainrule.viz.display import figure_output

    rows = max(1, -(-len(images) // 5))
    fig = Figure(figsize=(7.5, 1.75 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, 5, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i].reshape(28, 28), cmap="gray_r", interpolation="nearest")
            ax.set_title(f"{predicted[i]} (true {labels[i]})", fontsize=11, color="firebrick")
    fig.suptitle("test digits the network gets wrong: predicted (true)")
    return figure_output(fig, path, Path(path).suffix.lower().lstrip("."), dpi=100)


def cmd_show_mistakes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    network, trained_on = network_from_file(args.checkpoint, args.activation)
    dataset = args.dataset or trained_on or "mnist-5k"
    x, t = test_data(network, dataset, args.data_dir, args.quiet)
    labels = t.argmax(axis=1) if t.ndim == 2 else t
    predicted = predictions(network, x)
    wrong = np.flatnonzero(predicted != labels)
    print(
        f"test accuracy {1 - len(wrong) / len(x):.4f}: {len(wrong)} of {len(x)} images of "
        f"{dataset} wrong"
    )
    if len(wrong) == 0:
        print("nothing to draw: every test image is right")
        return 0
    shown = wrong[: args.count]
    pairs = {view: (int(labels[i]), int(predicted[i])) for view, i in enumerate(shown, start=1)}
    print(f"{{view: (label, inference)}}: {pairs}")
    written = plot_mistakes(x[shown], labels[shown], predicted[shown], args.output)
    print(f"wrote {written}")
    return 0


def half_float_report(network: Any, x: np.ndarray, t: np.ndarray, dataset: str) -> int:
    """The book's half_float_network.py: accuracy with the weights and images rounded to
    float16, against the network as it is, and how many predictions change. As in the
    book, only the values are float16; the arithmetic stays in the network's dtype."""
    labels = t.argmax(axis=1) if t.ndim == 2 else t
    before = predictions(network, x)
    kept = {key: param.copy() for key, param in network.params.items()}
    try:
        for param in network.params.values():
            param[...] = param.astype(np.float16)
        after = predictions(network, x.astype(np.float16))
    finally:
        for key, param in network.params.items():
            param[...] = kept[key]
    changed = int(np.count_nonzero(before != after))
    where = f"{len(x)} test images of {dataset}"
    print(f"{network.dtype.name:7s} accuracy {np.mean(before == labels):.4f}  ({where})")
    print(
        f"float16 accuracy {np.mean(after == labels):.4f}  (weights and images rounded to "
        "float16, as the book's half_float_network.py)"
    )
    print(f"{changed} of {len(x)} predictions change")
    return 0


def cmd_half_float(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``chainrule evaluate CHECKPOINT --dtype float16``."""
    network, trained_on = network_from_file(args.checkpoint)
    dataset = args.dataset or trained_on or "mnist-5k"
    x, t = test_data(network, dataset, args.data_dir, args.quiet)
    return half_float_report(network, x, t, dataset)


def cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``chainrule evaluate``: with ``--dtype float16`` the book's half_float_network.py
    (a checkpoint or a pickle), else training's evaluate."""
    if args.dtype == "float16":
        return cmd_half_float(args, parser)
    from chainrule.cli.evaluating import cmd_evaluate as evaluate_as_trained

    return evaluate_as_trained(args, parser)


def add_parser(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser(
        "show-mistakes",
        help="draw the test digits a trained network gets wrong (the book's chapter 8 figure)",
        description="Evaluate a checkpoint (or the book's pickled weights, e.g. "
        "ch08/deep_convnet_params.pkl) on the test set and draw the first images it gets "
        "wrong, each with its predicted and true label.",
    )
    show.add_argument("checkpoint", metavar="CHECKPOINT")
    show.add_argument(
        "-o",
        "--output",
        type=output_path(_FORMATS, drawn_by="matplotlib"),
        metavar="FILE",
        required=True,
        help=f"the picture to write ({suffixes(_FORMATS)})",
    )
    show.add_argument("--count", type=positive_int, default=20, help="images to draw (20)")
    show.add_argument(
        "--dataset", choices=DATASETS, help="default: the one the network was trained on"
    )
    show.add_argument("--data-dir", metavar="DIR")
    show.add_argument(
        "--activation",
        choices=("relu", "sigmoid"),
        default="relu",
        help="a fully connected network's, for the book's pickles (ch03's is sigmoid)",
    )
    show.add_argument("--quiet", action="store_true", help="no download progress bar")
    show.set_defaults(run=cmd_show_mistakes)
    # evaluate's --dtype float16 is served here, so that evaluating.py never imports this module
    commands.choices["evaluate"].set_defaults(run=cmd_evaluate)
