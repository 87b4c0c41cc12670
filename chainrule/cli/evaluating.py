"""``chainrule evaluate``: the accuracy and loss of a saved checkpoint on its data set."""

from __future__ import annotations

import argparse

from chainrule.cli.recipes import is_convnet


def cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.cli.data import load_data
    from chainrule.cli.train_description import load_described
    from chainrule.train import evaluate
    from chainrule.training_state import restore_network

    checkpoint = load_described(args.checkpoint)
    net = restore_network(checkpoint, args.checkpoint)
    trained = checkpoint.meta.get("train", {})
    dataset = args.dataset or trained.get("dataset", "mnist-5k")
    data_dir, remembered_by = args.data_dir, None
    if data_dir is None and dataset == trained.get("dataset"):
        data_dir = trained.get("data_dir")  # where the run found its data
        remembered_by = args.checkpoint
    (x_train, t_train), (x_test, t_test) = load_data(
        dataset, data_dir, args.quiet, flatten=not is_convnet(net), remembered_by=remembered_by
    )
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        loss, accuracy = evaluate(net, x, t)
        print(f"{name:5s} accuracy {accuracy:.4f}  loss {loss:.4f}  ({len(x)} images of {dataset})")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.mnist import DATASETS

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy and loss of a saved checkpoint",
        description="Load a checkpoint written by 'chainrule train --save' and evaluate it.",
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT")
    evaluate.add_argument(
        "--dataset", choices=DATASETS, help="default: the dataset the checkpoint was trained on"
    )
    evaluate.add_argument(
        "--data-dir", metavar="DIR", help="default: the folder the checkpoint's run read"
    )
    evaluate.add_argument("--quiet", action="store_true", help="no download progress bar")
    evaluate.add_argument(
        "--dtype",
        choices=("float16",),
        help="float16: test accuracy with the weights rounded (a checkpoint or the book's .pkl)",
    )
    evaluate.set_defaults(run=cmd_evaluate)
