"""``chainrule train --resume``: the run a checkpoint holds, and the flags that may not
change it (its network, optimiser and data: changing them would not continue the run)."""

from __future__ import annotations

import argparse

from chainrule.cli.args import hidden_sizes, output_path
from chainrule.cli.recipes import MLP_ONLY, is_convnet, model_flag
from chainrule.cli.starting import Run, absolute
from chainrule.errors import CheckpointError


def _show(value) -> str:
    """A flag's value as it is typed: ``50 50`` for a list, ``0.001`` for a float."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def changed_on_resume(
    args: argparse.Namespace, parser: argparse.ArgumentParser, net, optimizer_name: str, run
) -> list[str]:
    """Each flag given with --resume that asks for a setup other than the checkpoint's.

    The network, the optimiser and the data (order included) are the checkpoint's:
    changing them would not continue the run. A flag that repeats the checkpoint's
    value is no change, so a run's own command line with --resume added is accepted.
    """
    config = net.config()
    convnet = is_convnet(net)
    saved = {
        "model": model_flag(net),
        "dtype": config["dtype"],
        "weight_decay": config.get("weight_decay_lambda", 0.0),
        "optimizer": optimizer_name,
        **{name: run[name] for name in ("dataset", "batch_size", "seed", "sampling")},
    }
    if convnet:
        given = [name for name in MLP_ONLY if getattr(args, name) is not None]
        changed = [f"--{name} (the checkpoint's network is a convnet)" for name in given]
    else:
        changed = []
        saved["activation"] = config["activation"]
        saved["dropout"] = config["dropout_ration"] if config.get("use_dropout") else None
        saved["batchnorm"] = bool(config.get("use_batchnorm", False))
    asked = {name: getattr(args, name) for name in saved if getattr(args, name) is not None}
    if convnet:
        pass
    elif args.hidden is not None:
        saved["hidden"], asked["hidden"] = config["hidden_size_list"], hidden_sizes(args, parser)
    elif args.layers is not None:
        saved["layers"], asked["layers"] = len(config["hidden_size_list"]), args.layers
    changed += [
        f"--{name.replace('_', '-')}{'' if value is True else ' ' + _show(value)} "
        f"(the checkpoint has {_show(saved[name])})"
        for name, value in asked.items()
        if value != saved[name]
    ]
    if args.init is not None:
        changed.append(f"--init {args.init} (the weights come from the checkpoint)")
    return changed


def resumed_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Run:
    """The network, optimiser, run settings, history and step saved in --resume, with the
    flags that may change (--epochs or --iters, --lr, --data-dir) applied."""
    from chainrule.cli.train_description import load_described
    from chainrule.training_state import restore_training

    if args.save is None:  # the resumed run keeps saving where it was saved
        try:
            args.save = output_path()(args.resume)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--resume {args.resume} would be saved to: {error}; give --save PATH")
    state = restore_training(load_described(args.resume, to_resume=True), args.resume)
    try:
        settings = dict(state.meta["train"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{args.resume}: not a checkpoint written by 'chainrule train' ({error})"
        ) from None
    changed = changed_on_resume(args, parser, state.network, state.optimizer.name, settings)
    if changed:
        parser.error(
            f"--resume {args.resume} continues the checkpoint's run and cannot change "
            f"{', '.join(changed)}; leave {'them' if len(changed) > 1 else 'it'} out, "
            "or start a new run without --resume"
        )
    note = _apply_resume_flags(args, state.optimizer, settings)
    return Run(state.network, state.optimizer, settings, state.history, state.step, note=note)


def _apply_resume_flags(args: argparse.Namespace, optimizer, settings: dict) -> str:
    """Apply the flags a resumed run may change; return a note of a changed --lr."""
    note = ""
    if args.lr is not None and args.lr != optimizer.lr:
        note = f" with --lr {args.lr:g} (was {optimizer.lr:g})"
        optimizer.lr = args.lr
    if args.epochs is not None or args.iters is not None:
        settings["epochs"], settings["iters"] = args.epochs, args.iters
    if args.data_dir is not None:
        settings["data_dir"] = absolute(args.data_dir)
    return note
