"""``chainrule train``: a new or resumed run trained to its length, with a progress bar,
checkpoints, a stop at a step's end on Ctrl-C or SIGTERM, and the run's report.

A new run is :mod:`chainrule.cli.starting`'s, a resumed one :mod:`chainrule.cli.resuming`'s;
the recipes and networks are :mod:`chainrule.cli.recipes`', the signals
:mod:`chainrule.cli.stopping`'s, the lines and files :mod:`chainrule.cli.reporting`'s.
"""

from __future__ import annotations

import argparse

import numpy as np

from chainrule.cli import stopping
from chainrule.cli.args import (
    PROG,
    add_network_arguments,
    non_negative_float,
    output_path,
    parse_init,
    positive_float,
    positive_int,
    suffixes,
)
from chainrule.cli.progress import progress_bar, say
from chainrule.cli.recipes import (
    CONVNET_5K_EPOCHS,
    CONVNET_OPTIMIZER,
    DEFAULT_SGD_LR,
    NEW_RUN_DEFAULTS,
    is_convnet,
    train_description,
)
from chainrule.cli.reporting import (
    describe_run,
    format_evaluation,
    report,
    too_high_learning_rate,
)
from chainrule.cli.resuming import resumed_run
from chainrule.cli.starting import Run, new_run
from chainrule.errors import ArgumentError, TrainingError


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import time

    run = resumed_run(args, parser) if args.resume else new_run(args, parser)
    data = _run_data(args, run)
    total = _total_steps(args, run, len(data[0][0]))
    describe = describe_run(run, data, total)
    opening = f"resuming at step {run.start_step}{run.note}: " if args.resume else "training "
    say(None, opening + describe, args.quiet)
    started = time.perf_counter()
    try:
        history = _train(args, run, data, total)
    except stopping.Interrupted as stop:
        return stopping.save_when_stopped(stop, args.save, _saver(args, run), run.history)
    report(args, run, history, time.perf_counter() - started, total, describe)
    # Checked last, so that the plot, the JSON and the checkpoint show what happened.
    wrecked = too_high_learning_rate(history, run.net.output_size, run.optimizer.lr)
    if wrecked is not None:
        raise TrainingError(wrecked)
    return 0


def _run_data(args: argparse.Namespace, run: Run):
    """The run's data set, shaped as its network takes the images."""
    from chainrule.cli.data import load_data

    return load_data(
        run.settings["dataset"],
        run.settings.get("data_dir"),
        args.quiet,
        flatten=not is_convnet(run.net),
        remembered_by=args.resume if args.resume and args.data_dir is None else None,
    )


def _total_steps(args: argparse.Namespace, run: Run, train_size: int) -> int:
    """The step the run ends at; an ArgumentError when a resumed run is there already."""
    from chainrule.train import iters_per_epoch

    settings = run.settings
    batch = min(settings["batch_size"], train_size)  # as fit() clamps it
    total = settings["iters"]
    if total is None:
        total = settings["epochs"] * iters_per_epoch(train_size, batch)
    if run.start_step >= total:
        raise ArgumentError(
            f"{args.resume} is already at step {run.start_step} of {total}; "
            "pass a larger --epochs or --iters to train on"
        )
    return total


def _train(args: argparse.Namespace, run: Run, data, total: int):
    """``fit`` the run to ``total`` steps with a bar and checkpoints; the History, or
    stopping.Interrupted at the end of the step during which a signal came."""
    from chainrule.train import LambdaCallback, Resume, fit

    (x_train, t_train), (x_test, t_test) = data
    bar = progress_bar(total, run.start_step, args.quiet)
    settings = run.settings
    try:
        with stopping.stop_at_step_boundary_on_signal() as received:
            reporter = LambdaCallback(
                on_step=_step_reporter(bar, received),
                on_evaluate=lambda record: say(bar, format_evaluation(record), args.quiet),
                on_checkpoint=_saver(args, run),
                checkpoint_every=args.save_every,
            )
            return fit(
                run.net,
                run.optimizer,
                x_train,
                t_train,
                x_test,
                t_test,
                batch_size=settings["batch_size"],
                epochs=settings["epochs"],
                iters=settings["iters"],
                seed=settings["seed"],
                sampling=settings["sampling"],
                threads=args.threads,
                resume=Resume(run.history, run.start_step),
                callbacks=[reporter],
            )
    finally:
        if bar is not None:
            bar.close()  # before any message about the end of the run


def _step_reporter(bar, received: list[int]):
    """``fit``'s on_step: move the bar on; stop after the step if a signal came."""

    def on_step(step: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
        if received:
            raise stopping.Interrupted(step, received[0])

    return on_step


def _saver(args: argparse.Namespace, run: Run):
    """``fit``'s on_checkpoint: the run's training state to --save (nothing without it)."""
    from chainrule.training_state import save_training

    def save(step: int, history) -> None:
        if not args.save:
            return
        # fit checks this before each checkpoint it asks for; an interrupted run's save
        # is the caller's, so it is checked here too: no NaN ever replaces a good file.
        if not all(np.isfinite(p).all() for p in run.net.params.values()):
            raise TrainingError(
                f"the parameters are not finite at step {step}; {args.save} is left as it was"
            )
        save_training(
            args.save, run.net, run.optimizer, step=step, history=history,
            meta={"train": run.settings},
        )  # fmt: skip

    return save


def _dropout_ratio(text: str) -> float:
    ratio = positive_float(text)
    if ratio >= 1:
        raise argparse.ArgumentTypeError(f"expected a ratio in (0, 1), got {text!r}")
    return ratio


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.mnist import DATASETS
    from chainrule.optim import OPTIMIZERS
    from chainrule.train import SAMPLINGS
    from chainrule.viz.curves import FORMATS as PLOT_FORMATS

    train = commands.add_parser(
        "train",
        help="train a network on MNIST-like data",
        description=train_description(),
    )
    train.add_argument(
        "--model",
        choices=("mlp", "convnet", "deepconvnet"),
        help="mlp: a fully connected network (default); convnet: chapter 7's SimpleConvNet "
        "(conv 30 5×5 → ReLU → pool 2×2 → 100 → ReLU → 10) on 1×28×28 images; "
        "deepconvnet: chapter 8's DeepConvNet (the book's recipe, as convnet's)",
    )
    add_network_arguments(train)
    train.add_argument(
        "--dropout",
        type=_dropout_ratio,
        metavar="RATIO",
        help="dropout after each hidden activation, dropping RATIO of the units "
        "(a MultiLayerNetExtend; fully connected networks only)",
    )
    train.add_argument(
        "--batchnorm",
        action="store_true",
        default=None,
        help="batch normalisation before each hidden activation (a MultiLayerNetExtend)",
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist-5k",
        help="mnist-5k (embedded, default), mnist or fashion-mnist",
    )
    data.add_argument(
        "--data-dir",
        metavar="DIR",
        help="an existing folder with the four IDX files (.gz or raw) of mnist/fashion-mnist "
        f"('{PROG} fetch' downloads them); a checkpoint remembers it",
    )
    learn = train.add_argument_group("learning")
    learn.add_argument(
        "--init",
        type=parse_init,
        metavar="STD|NAME",
        help="initial weight scale: a number, he/relu or xavier/sigmoid (default: he on "
        "mnist-5k; else 0.01 for one hidden layer, by activation for more)",
    )
    learn.add_argument(
        "--optimizer",
        type=str.lower,
        choices=sorted(OPTIMIZERS),
        help=f"default: sgd; {CONVNET_OPTIMIZER} for --model convnet",
    )
    learn.add_argument(
        "--lr",
        type=positive_float,
        help=f"learning rate (default: {DEFAULT_SGD_LR} for sgd, else the "
        "optimiser's book default)",
    )
    learn.add_argument("--batch-size", type=positive_int, default=100, help="default: 100")
    length = learn.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=positive_int,
        help="passes over the training data (default: 60 on mnist-5k; convnet: "
        f"{CONVNET_5K_EPOCHS} on mnist-5k, 20 on the full sets)",
    )
    length.add_argument(
        "--iters",
        type=positive_int,
        help="training steps (default: 10000 on mnist and fashion-mnist)",
    )
    learn.add_argument(
        "--weight-decay",
        type=non_negative_float,
        metavar="LAMBDA",
        help="L2 weight decay λ (default: 0.001 on mnist-5k, else 0)",
    )
    learn.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default="shuffle",
        help="shuffle each epoch (default) or draw batches with replacement as the book does",
    )
    learn.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="default: float32"
    )
    out = train.add_argument_group("output")
    out.add_argument(
        "--save",
        type=output_path(),
        metavar="PATH",
        help="write a checkpoint (.npz) as training goes (with --resume: the resumed file, "
        "unless this names another)",
    )
    out.add_argument(
        "--save-every",
        type=positive_int,
        metavar="STEPS",
        help="checkpoint every STEPS steps (default: at each epoch's end)",
    )
    out.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the run saved in this checkpoint, with its network, optimiser and "
        "data (its --data-dir too), saving to it; only --epochs or --iters, --lr, --data-dir "
        "and the output flags may change",
    )
    out.add_argument(
        "--plot",
        type=output_path(PLOT_FORMATS, drawn_by="matplotlib"),
        metavar="PATH",
        help=f"draw loss and accuracy curves ({suffixes(PLOT_FORMATS)})",
    )
    out.add_argument(
        "--json",
        type=output_path(),
        metavar="PATH",
        help="write final metrics and history as JSON",
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    train.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads that share the training step's products (default: chosen by timing); "
        "any N gives the same numbers",
    )
    train.set_defaults(run=cmd_train, **dict.fromkeys(NEW_RUN_DEFAULTS))
