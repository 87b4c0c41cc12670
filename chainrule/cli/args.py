"""Argument types and the network options shared by the commands."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

PROG = "chainrule"


def _number_type(convert, accept, expected: str):
    """An argparse ``type``: ``convert`` the text, and refuse it unless ``accept``-ed."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number_type(float, lambda v: np.isfinite(v) and v > 0, "a positive number")
non_negative_float = _number_type(float, lambda v: np.isfinite(v) and v >= 0, "a number >= 0")


def suffixes(formats: tuple[str, ...]) -> str:
    """``("png", "svg", "pdf")`` as ``".png, .svg or .pdf"``, for help and messages."""
    names = [f".{fmt}" for fmt in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def output_path(formats: tuple[str, ...] | None = None, drawn_by: str | None = None):
    """An argparse ``type`` for a file a command will write, checked when the command starts.

    A path whose folder is missing or read-only, that names a folder, (with ``formats``)
    whose suffix is not one of them, or (with ``drawn_by``, an optional extra's package)
    that nothing installed could draw is a usage error naming the path, at once: not
    after a training run, and not under the name of a temporary file.
    """

    def check(text: str) -> str:
        path = Path(text)
        folder = path.parent
        if formats is not None and path.suffix.lower().lstrip(".") not in formats:
            why = f"use a name ending in {suffixes(formats)}"
        elif drawn_by is not None and importlib.util.find_spec(drawn_by) is None:
            why = f"drawing needs {drawn_by}, not installed (pip install 'chainrule[plot]')"
        elif not folder.exists():
            why = f"no folder {str(folder)!r}"
        elif not folder.is_dir():
            why = f"{str(folder)!r} is a file, not a folder"
        elif path.is_dir():
            why = "that is a folder"
        elif not os.access(folder, os.W_OK | os.X_OK):
            why = f"the folder {str(folder)!r} is not writable"
        else:
            return text
        raise argparse.ArgumentTypeError(f"cannot write {text}: {why}")

    return check


def hidden_sizes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[int]:
    """``--hidden`` sizes, repeated to ``--layers`` hidden layers when one size is given;
    a usage error when the network they make would not fit in memory."""
    from chainrule.cli.train_description import network_too_large
    from chainrule.description import MAX_HIDDEN_LAYERS

    hidden = list(args.hidden)
    if args.layers is not None:
        if len(hidden) == 1:
            if args.layers > MAX_HIDDEN_LAYERS:
                parser.error(f"--layers {args.layers}: at most {MAX_HIDDEN_LAYERS} hidden layers")
            hidden *= args.layers
        elif len(hidden) != args.layers:
            parser.error(f"--layers {args.layers} does not match {len(hidden)} --hidden sizes")
    if len(hidden) > MAX_HIDDEN_LAYERS:
        parser.error(f"--hidden: {len(hidden)} sizes, at most {MAX_HIDDEN_LAYERS} hidden layers")
    network = {
        "network": "MultiLayerNet",
        "input_size": 784,
        "hidden_size_list": hidden,
        "output_size": 10,
        "dtype": getattr(args, "dtype", None) or "float64",
    }
    too_large = network_too_large(network)
    if too_large is not None:
        shown = " ".join(map(str, hidden))
        shown = shown if len(shown) <= 40 else shown[:39] + "…"
        parser.error(f"--hidden {shown}: the network is too large: {too_large}")
    return hidden


def add_network_arguments(
    parser: argparse.ArgumentParser,
    hidden_default: int | None = 50,
    hidden_help: str = "hidden layer sizes, one or more (default: 50)",
) -> None:
    """--hidden, --layers, --activation and --seed, shared by the commands that build nets."""
    parser.add_argument(
        "--hidden",
        type=positive_int,
        nargs="+",
        default=None if hidden_default is None else [hidden_default],
        metavar="SIZE",
        help=hidden_help,
    )
    parser.add_argument(
        "--layers",
        type=positive_int,
        metavar="K",
        help="number of hidden layers, each of the single --hidden size",
    )
    parser.add_argument(
        "--activation",
        choices=("relu", "sigmoid"),
        default="relu",
        help="hidden activation (default: relu)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed, >= 0 (default: 0)"
    )


def parse_init(text: str) -> float | str:
    """``--init``: a positive number (a constant std) or an initialiser's name."""
    from chainrule.init import INIT_NAMES

    if text.lower() in INIT_NAMES:
        return text.lower()
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or one of {', '.join(INIT_NAMES)}, got {text!r}"
        ) from None


def build_network(
    hidden: list[int],
    *,
    activation: str = "relu",
    init: float | str | None = None,
    weight_decay: float = 0.0,
    dtype: str = "float32",
    seed: int = 0,
):
    """The book's TwoLayerNet (784-``hidden[0]``-10) for one ReLU hidden layer without
    weight decay, else a MultiLayerNet (784-``hidden``-10): the fully connected network
    the commands build from their flags' values.

    ``init`` None is each class's book default: 0.01 for the two-layer net, He or Xavier
    (by activation) for deeper ones.
    """
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    input_size, output_size = 784, 10
    if init is None:
        init = 0.01 if len(hidden) == 1 else activation
    if len(hidden) == 1 and activation == "relu" and not weight_decay:
        return TwoLayerNet(input_size, hidden[0], output_size, init, dtype=dtype, seed=seed)
    return MultiLayerNet(
        input_size,
        list(hidden),
        output_size,
        activation=activation,
        weight_init_std=init,
        weight_decay_lambda=weight_decay,
        dtype=dtype,
        seed=seed,
    )
