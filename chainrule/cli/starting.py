"""A run about to train (:class:`Run`), and a new one: the network, optimiser and
settings that ``chainrule train``'s flags and the dataset's recipe ask for."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from chainrule.cli.args import hidden_sizes
from chainrule.cli.recipes import (
    CONVNET_OPTIMIZER,
    MLP_ONLY,
    NEW_RUN_DEFAULTS,
    RECIPES,
    optimizer_for,
    train_network,
)


@dataclass
class Run:
    """A run about to train: new, or resumed from a checkpoint."""

    net: Any
    optimizer: Any
    settings: dict  # the data, batches, seed and length: a checkpoint's "train" entry
    history: Any
    start_step: int = 0
    init: float | str | None = None  # None when the weights come from a checkpoint
    note: str = ""  # what a resumed run changed (its --lr)


def absolute(folder: str) -> str:
    """A --data-dir as the checkpoint keeps it: absolute, so that it is found from any
    working directory."""
    from pathlib import Path

    return str(Path(folder).expanduser().absolute())


def _check_model_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """A usage error for a fully connected network's flag given to a convnet; and a
    convnet's optimiser, when none is given, is the book's (CONVNET_OPTIMIZER)."""
    if args.model not in ("convnet", "deepconvnet"):
        return
    given = [f"--{name}" for name in MLP_ONLY if getattr(args, name) is not None]
    if args.weight_decay:
        given.append("--weight-decay")
    if given:
        network = "SimpleConvNet" if args.model == "convnet" else "DeepConvNet"
        parser.error(f"--model {args.model} ({network}) takes no {', '.join(given)}")
    if args.optimizer is None:
        args.optimizer = CONVNET_OPTIMIZER


def new_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Run:
    """The network, optimiser and run settings the flags and the dataset's recipe ask for,
    and the initialisation used."""
    from chainrule.train import History

    _check_model_flags(args, parser)
    for name, default in NEW_RUN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, list(default) if isinstance(default, list) else default)
    hidden = hidden_sizes(args, parser)
    recipe = RECIPES[args.model][args.dataset]
    init = args.init if args.init is not None else recipe["init"]
    net = train_network(
        args.model,
        hidden,
        activation=args.activation,
        init=init,
        weight_decay=args.weight_decay if args.weight_decay is not None else recipe["weight_decay"],
        dropout=args.dropout,
        batchnorm=args.batchnorm,
        dtype=args.dtype,
        seed=args.seed,
    )
    if args.epochs is not None or args.iters is not None:
        length = {"epochs": args.epochs, "iters": args.iters}
    else:
        length = {"epochs": recipe.get("epochs"), "iters": recipe.get("iters")}
    settings = {
        "dataset": args.dataset,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "sampling": args.sampling,
        "init": init,  # with the seed, it rebuilds the initial weights (show-weights --before)
        **length,
    }
    if args.data_dir is not None:
        settings["data_dir"] = absolute(args.data_dir)
    return Run(net, optimizer_for(args.optimizer, args.lr), settings, History(), init=init)
