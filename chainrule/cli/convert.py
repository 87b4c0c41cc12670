"""``chainrule convert FILE.pkl OUT.npz``: the book's pickled weights as a chainrule
checkpoint, read without running anything the pickle names."""

from __future__ import annotations

import argparse

from chainrule.cli.args import PROG

__all__ = ["add_parser", "cmd_convert"]


def cmd_convert(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.book.weight_files import network_config
    from chainrule.checkpoint import save_checkpoint
    from chainrule.safepickle import load_arrays

    params = load_arrays(args.pickle)
    config = network_config(params, args.activation, args.pickle)
    params = {key: value.astype(config["dtype"]) for key, value in params.items()}
    # Only the network: how it was trained is not in the file (a checkpoint's "train"
    # record describes a chainrule run)
    save_checkpoint(args.output, params, meta={"network": config})
    shapes = ", ".join(f"{key} {'×'.join(map(str, p.shape))}" for key, p in params.items())
    print(f"wrote {args.output}: a {config['network']} ({shapes})")
    print(f"the book trains on the full MNIST: {PROG} evaluate {args.output} --dataset mnist")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chainrule.cli.args import output_path

    convert = commands.add_parser(
        "convert",
        help="the book's pickled weights (params.pkl ...) as a chainrule checkpoint",
        description="Read a pickle the book's save_params wrote (a dict of NumPy arrays; "
        "any other content is refused unread), find the network it belongs to from the "
        "arrays' shapes, and write a checkpoint 'chainrule evaluate' and 'chainrule "
        "show-mistakes' read.",
    )
    convert.add_argument("pickle", metavar="FILE.pkl")
    convert.add_argument("output", metavar="OUT.npz", type=output_path())
    convert.add_argument(
        "--activation",
        choices=("relu", "sigmoid"),
        default="relu",
        help="a fully connected network's (ch03's sample_weight.pkl is sigmoid)",
    )
    convert.set_defaults(run=cmd_convert)
