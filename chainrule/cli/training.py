"""``chainrule train`` and ``chainrule evaluate``: training runs, checkpoints, metrics."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.cli.args import (
    PROG,
    add_network_arguments,
    hidden_sizes,
    non_negative_float,
    output_path,
    parse_init,
    positive_float,
    positive_int,
    suffixes,
)
from chainrule.cli.progress import progress_bar, say
from chainrule.errors import ArgumentError, CheckpointError, TrainingError

# What `chainrule train` does for a flag not given, by dataset. On the full sets: the
# book's recipe, 10,000 steps from TwoLayerNet's 0.01 initial scale. On the 4,000 embedded
# images that recipe overfits; He initialisation and a little weight decay, chapter 6's
# remedies, lift it (the figures: docs/differences.md).
BOOK_RECIPE = {"iters": 10_000, "init": None, "weight_decay": 0.0}
DEFAULT_RECIPE = {
    "mnist-5k": {"epochs": 60, "init": "he", "weight_decay": 1e-3},
    "mnist": BOOK_RECIPE,
    "fashion-mnist": BOOK_RECIPE,
}
# --model convnet (chapter 7's SimpleConvNet) when a flag is not given: the book's
# train_convnet.py recipe (Adam lr 0.001, batch 100, initial scale 0.01, 20 epochs on the
# full sets); on mnist-5k, CONVNET_5K_EPOCHS epochs (docs/performance.md gives time and accuracy).
CONVNET_5K_EPOCHS = 10
CONVNET_RECIPE = {
    "mnist-5k": {"epochs": CONVNET_5K_EPOCHS, "init": 0.01, "weight_decay": 0.0},
    "mnist": {"epochs": 20, "init": 0.01, "weight_decay": 0.0},
    "fashion-mnist": {"epochs": 20, "init": 0.01, "weight_decay": 0.0},
}
CONVNET_OPTIMIZER = "adam"
# --model deepconvnet (chapter 8's DeepConvNet): the same recipe, He initialisation
DEEPCONVNET_RECIPE = {name: {**r, "init": "he"} for name, r in CONVNET_RECIPE.items()}
# Flags that only the fully connected networks take.
MLP_ONLY = ("hidden", "layers", "activation", "dropout", "batchnorm")
# --lr when not given: the book's chapter-5 recipe for SGD, each class's default otherwise.
DEFAULT_SGD_LR = 0.1

# A new run's setup for the flags not given. A resumed run takes its setup from the
# checkpoint instead, and must tell a flag given from one left out: so these flags'
# parser default is None, and a new run fills them in from here.
NEW_RUN_DEFAULTS = {
    "model": "mlp",
    "hidden": [50],
    "activation": "relu",
    "seed": 0,
    "dataset": "mnist-5k",
    "optimizer": "sgd",
    "batch_size": 100,
    "sampling": "shuffle",
    "dtype": "float32",
}

# A finite but far too high learning rate does not stop training: it ends with a loss in
# the hundreds, or with every ReLU dead and one class answered for every image (the runs
# that set these thresholds: docs/reliability.md). So: a run is called diverged when its
# final training loss is above LOSS_RISE times its first step's, or when its accuracy is
# below CHANCE_MARGIN times chance after a step loss above LOSS_JUMP times the first
# (without such a jump, a run near chance had too few steps or too small a rate).
LOSS_RISE = 1.5
LOSS_JUMP = 3.0
CHANCE_MARGIN = 1.5


@dataclass
class _Run:
    """A run about to train: new, or resumed from a checkpoint."""

    net: Any
    optimizer: Any
    settings: dict  # the data, batches, seed and length: a checkpoint's "train" entry
    history: Any
    start_step: int = 0
    init: float | str | None = None  # None when the weights come from a checkpoint
    note: str = ""  # what a resumed run changed (its --lr)


def _format_evaluation(record) -> str:
    line = (
        f"epoch {record.epoch:6.2f}  step {record.step:6d}  "
        f"train loss {record.train_loss:.4f}  train acc {record.train_accuracy:.4f}"
    )
    if record.test_accuracy is not None:
        line += f"  test loss {record.test_loss:.4f}  test acc {record.test_accuracy:.4f}"
    return line


def _write_json(path: str, data: dict) -> None:
    import json

    from chainrule.fileio import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def _describe_network(net, init: float | str | None) -> str:
    """``the book's two-layer network TwoLayerNet(784-50-10, relu, float32), init he, weight
    decay 0.001``; batch normalisation and dropout are named too."""
    text = f"{net!r}"
    if len(getattr(net, "hidden_size_list", ())) == 1:  # whichever class: the book's shape
        text = f"the book's two-layer network {text}"
    if getattr(net, "use_batchnorm", False):
        text += ", batch normalisation"
    if getattr(net, "use_dropout", False):
        text += f", dropout {net.dropout_ration:g}"
    if init is not None:
        text += f", init {init}"
    if getattr(net, "weight_decay_lambda", 0):
        text += f", weight decay {net.weight_decay_lambda:g}"
    return text


def _is_convnet(net) -> bool:
    from chainrule.networks import DeepConvNet, SimpleConvNet

    return isinstance(net, (SimpleConvNet, DeepConvNet))


def _model_flag(net) -> str:
    """The --model value that builds a network of this class."""
    if not _is_convnet(net):
        return "mlp"
    return "deepconvnet" if type(net).__name__ == "DeepConvNet" else "convnet"


def _build_network(
    model: str = "mlp",
    hidden: Sequence[int] = (50,),
    *,
    activation: str = "relu",
    init: float | str | None = None,
    weight_decay: float = 0.0,
    dropout: float | None = None,
    batchnorm: bool = False,
    dtype: str = "float32",
    seed: int = 0,
):
    """The network ``chainrule train`` builds for these flag values (underscored): chapter
    8's DeepConvNet for ``deepconvnet``, chapter 7's SimpleConvNet for ``convnet``; for
    ``mlp``, a MultiLayerNetExtend with ``dropout`` or ``batchnorm``, else the book's
    TwoLayerNet for one ReLU hidden layer without weight decay, else a MultiLayerNet.
    ``init`` None is each class's book default (0.01 for one hidden layer, else He or
    Xavier by activation)."""
    from chainrule.networks import DeepConvNet, MultiLayerNetExtend, SimpleConvNet

    if model == "deepconvnet":  # chapter 8's; its He initialisation is the book's
        return DeepConvNet((1, 28, 28), dtype=dtype, seed=seed)
    if model == "convnet":
        return SimpleConvNet(
            (1, 28, 28), hidden_size=100, output_size=10, weight_init_std=init,
            dtype=dtype, seed=seed,
        )  # fmt: skip
    if dropout is None and not batchnorm:
        return _plain_network(list(hidden), activation, init, weight_decay, dtype, seed)
    return MultiLayerNetExtend(
        784,
        list(hidden),
        10,
        activation=activation,
        weight_init_std=activation if init is None else init,
        weight_decay_lambda=weight_decay,
        use_dropout=dropout is not None,
        dropout_ration=0.5 if dropout is None else dropout,
        use_batchnorm=bool(batchnorm),
        dtype=np.dtype(dtype),
        seed=seed,
    )


def _plain_network(hidden: list[int], activation: str, init, decay: float, dtype: str, seed: int):
    """The book's TwoLayerNet for one ReLU hidden layer without weight decay, else a
    MultiLayerNet (as ``chainrule.cli.args.build_network`` chooses)."""
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    if init is None:
        init = 0.01 if len(hidden) == 1 else activation
    if len(hidden) == 1 and activation == "relu" and not decay:
        return TwoLayerNet(784, hidden[0], 10, init, dtype=dtype, seed=seed)
    return MultiLayerNet(
        784,
        hidden,
        10,
        activation=activation,
        weight_init_std=init,
        weight_decay_lambda=decay,
        dtype=dtype,
        seed=seed,
    )


def _optimizer(name: str, lr: float | None):
    """The optimiser ``--optimizer name --lr lr`` asks for (SGD's lr: DEFAULT_SGD_LR)."""
    from chainrule.optim import make_optimizer

    if lr is None and name == "sgd":
        lr = DEFAULT_SGD_LR
    return make_optimizer(name, **({} if lr is None else {"lr": lr}))


def _too_high_learning_rate(history, classes: int, lr: float) -> str | None:
    """Why a finished run looks wrecked by its learning rate, or None (see LOSS_RISE)."""
    first, final = history.losses[0], history.evaluations[-1]
    advice = f"the learning rate {lr:g} is too high; try a smaller --lr, e.g. {lr / 10:g}"
    if final.train_loss > LOSS_RISE * first:
        return (
            f"the training loss rose from {first:.4g} (first step) to {final.train_loss:.4g} "
            f"(end): {advice}"
        )
    peak = max(history.losses)
    if final.train_accuracy < CHANCE_MARGIN / classes and peak > LOSS_JUMP * first:
        return (
            f"train accuracy {final.train_accuracy:.4f} is chance level ({classes} classes) "
            f"after the training loss jumped from {first:.4g} to {peak:.4g}: {advice}"
        )
    return None


def _describe_batch(batch: int, asked: int) -> str:
    """``batch 100``; and when --batch-size is more than the images, that fit() uses them all."""
    if batch == asked:
        return f"batch {batch}"
    return f"batch {batch} (the whole training set: --batch-size {asked} is more than its images)"


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM, raised at the end of a step so that a checkpoint is consistent."""

    def __init__(self, step: int, signum: int) -> None:
        super().__init__(step, signum)
        self.step, self.signum = step, signum


# What a second signal does: Ctrl-C interrupts at once, SIGTERM ends the process.
_SECOND_SIGNAL = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@contextlib.contextmanager
def _stop_at_step_boundary_on_signal():
    """While training, a first Ctrl-C or SIGTERM only records the signal (the list is
    non-empty then): the step in progress finishes, then training stops and saves. A
    second one acts at once, as usual (SIGTERM is what a scheduler or ``kill`` sends)."""
    received: list[int] = []

    def on_signal(signum, frame) -> None:
        received.append(signum)
        for number, action in _SECOND_SIGNAL.items():
            signal.signal(number, action)

    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return
    previous = {number: signal.signal(number, on_signal) for number in _SECOND_SIGNAL}
    try:
        yield received
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def _show(value) -> str:
    """A flag's value as it is typed: ``50 50`` for a list, ``0.001`` for a float."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _changed_on_resume(
    args: argparse.Namespace, parser: argparse.ArgumentParser, net, optimizer_name: str, run
) -> list[str]:
    """Each flag given with --resume that asks for a setup other than the checkpoint's.

    The network, the optimiser and the data (order included) are the checkpoint's:
    changing them would not continue the run. A flag that repeats the checkpoint's
    value is no change, so a run's own command line with --resume added is accepted.
    """
    config = net.config()
    convnet = _is_convnet(net)
    saved = {
        "model": _model_flag(net),
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


def _resumed_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> _Run:
    """The network, optimiser, run settings, history and step saved in --resume, with the
    flags that may change (--epochs or --iters, --lr, --data-dir) applied."""
    from chainrule.cli.description import load_described
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
    changed = _changed_on_resume(args, parser, state.network, state.optimizer.name, settings)
    if changed:
        parser.error(
            f"--resume {args.resume} continues the checkpoint's run and cannot change "
            f"{', '.join(changed)}; leave {'them' if len(changed) > 1 else 'it'} out, "
            "or start a new run without --resume"
        )
    note = _apply_resume_flags(args, state.optimizer, settings)
    return _Run(state.network, state.optimizer, settings, state.history, state.step, note=note)


def _apply_resume_flags(args: argparse.Namespace, optimizer, settings: dict) -> str:
    """Apply the flags a resumed run may change; return a note of a changed --lr."""
    note = ""
    if args.lr is not None and args.lr != optimizer.lr:
        note = f" with --lr {args.lr:g} (was {optimizer.lr:g})"
        optimizer.lr = args.lr
    if args.epochs is not None or args.iters is not None:
        settings["epochs"], settings["iters"] = args.epochs, args.iters
    if args.data_dir is not None:
        settings["data_dir"] = _absolute(args.data_dir)
    return note


def _absolute(folder: str) -> str:
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


def _new_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> _Run:
    """The network, optimiser and run settings the flags and the dataset's recipe ask for,
    and the initialisation used."""
    from chainrule.train import History

    _check_model_flags(args, parser)
    for name, default in NEW_RUN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, list(default) if isinstance(default, list) else default)
    hidden = hidden_sizes(args, parser)
    recipes = {"mlp": DEFAULT_RECIPE, "convnet": CONVNET_RECIPE}.get(args.model, DEEPCONVNET_RECIPE)
    recipe = recipes[args.dataset]
    init = args.init if args.init is not None else recipe["init"]
    net = _build_network(
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
        settings["data_dir"] = _absolute(args.data_dir)
    optimizer = _optimizer(args.optimizer, args.lr)
    return _Run(net, optimizer, settings, History(), init=init)


def network_and_optimizer(settings: dict):
    """The network and optimiser that ``chainrule train`` builds from these flag values.

    ``settings`` names them as the flags do, with underscores: ``hidden`` (a list of
    sizes, or one size repeated ``layers`` times), ``activation``, ``init``,
    ``weight_decay``, ``optimizer``, ``lr``, ``dtype``, ``seed``; a missing one (or None)
    takes train's default. ``chainrule search`` builds its trials here too, so that the
    train command it prints for a trial builds the very same network.
    """
    hidden = settings["hidden"]
    hidden = [hidden] * settings.get("layers", 1) if isinstance(hidden, int) else list(hidden)
    net = _build_network(
        "mlp",
        hidden,
        activation=settings.get("activation") or "relu",
        init=settings.get("init"),
        weight_decay=settings.get("weight_decay") or 0.0,
        dtype=settings.get("dtype") or "float32",
        seed=settings.get("seed", 0),
    )
    return net, _optimizer(settings.get("optimizer") or "sgd", settings.get("lr"))


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import time

    run = _resumed_run(args, parser) if args.resume else _new_run(args, parser)
    data = _run_data(args, run)
    total = _total_steps(args, run, len(data[0][0]))
    describe = _describe_run(run, data, total)
    opening = f"resuming at step {run.start_step}{run.note}: " if args.resume else "training "
    say(None, opening + describe, args.quiet)
    started = time.perf_counter()
    try:
        history = _train(args, run, data, total)
    except _Interrupted as stop:
        return _save_when_stopped(stop, args.save, _saver(args, run), run.history)
    _report(args, run, history, time.perf_counter() - started, total, describe)
    # Checked last, so that the plot, the JSON and the checkpoint show what happened.
    wrecked = _too_high_learning_rate(history, run.net.output_size, run.optimizer.lr)
    if wrecked is not None:
        raise TrainingError(wrecked)
    return 0


def _run_data(args: argparse.Namespace, run: _Run):
    """The run's data set, shaped as its network takes the images."""
    from chainrule.cli.data import load_data

    return load_data(
        run.settings["dataset"],
        run.settings.get("data_dir"),
        args.quiet,
        flatten=not _is_convnet(run.net),
        remembered_by=args.resume if args.resume and args.data_dir is None else None,
    )


def _total_steps(args: argparse.Namespace, run: _Run, train_size: int) -> int:
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


def _describe_run(run: _Run, data, total: int) -> str:
    """The network, data, optimiser, batch and length, as the opening line names them."""
    (x_train, _), (x_test, _) = data
    asked = run.settings["batch_size"]
    return (
        f"{_describe_network(run.net, run.init)} on {run.settings['dataset']} "
        f"({len(x_train)} train / {len(x_test)} test), "
        f"{run.optimizer!r}, {_describe_batch(min(asked, len(x_train)), asked)}, {total} steps"
    )


def _train(args: argparse.Namespace, run: _Run, data, total: int):
    """``fit`` the run to ``total`` steps with a bar and checkpoints; the History, or
    _Interrupted at the end of the step during which a signal came."""
    from chainrule.train import LambdaCallback, Resume, fit

    (x_train, t_train), (x_test, t_test) = data
    bar = progress_bar(total, run.start_step, args.quiet)
    settings = run.settings
    try:
        with _stop_at_step_boundary_on_signal() as received:
            reporter = LambdaCallback(
                on_step=_step_reporter(bar, received),
                on_evaluate=lambda record: say(bar, _format_evaluation(record), args.quiet),
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
            raise _Interrupted(step, received[0])

    return on_step


def _saver(args: argparse.Namespace, run: _Run):
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


def _report(args: argparse.Namespace, run: _Run, history, seconds: float, total: int, describe):
    """The final line, and the --plot and --json a finished run was asked for."""
    final = history.evaluations[-1]
    print(
        f"done in {seconds:.1f} s: test accuracy {final.test_accuracy:.4f}, "
        f"train accuracy {final.train_accuracy:.4f}" + (f"; saved {args.save}" if args.save else "")
    )
    if args.plot:
        from chainrule.viz.curves import plot_history

        plot_history(history, args.plot, title=describe)
        say(None, f"plot: {args.plot}", args.quiet)
    if args.json:
        config = {
            "network": run.net.config(),
            "optimizer": {"name": run.optimizer.name, **run.optimizer.hyperparams},
            "train": run.settings,
        }
        _write_json(
            args.json,
            {
                "train_accuracy": final.train_accuracy,
                "test_accuracy": final.test_accuracy,
                "train_loss": final.train_loss,
                "test_loss": final.test_loss,
                "seconds": seconds,
                "steps": total,
                "config": config,
                "history": history.to_dict(),
            },
        )


def _save_when_stopped(stop: _Interrupted, target: str | None, save, history) -> int:
    """Save an interrupted run (unless its weights are not finite), say so in one line, and
    return the exit status a shell gives a process ended by that signal (130 for Ctrl-C)."""
    what = "interrupted" if stop.signum == signal.SIGINT else "terminated"
    if not target:
        line = f"{what} at step {stop.step} (nothing saved: no --save)"
    else:
        try:
            save(stop.step, history)
        except TrainingError as error:
            line = f"{what} at step {stop.step}; not saved: {error}"
        else:
            line = (
                f"{what} at step {stop.step}; saved {target} "
                f"(continue with: {PROG} train --resume {target})"
            )
    print(f"{PROG}: {line}", file=sys.stderr)
    return 128 + stop.signum


def cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.cli.data import load_data
    from chainrule.cli.description import load_described
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
        dataset, data_dir, args.quiet, flatten=not _is_convnet(net), remembered_by=remembered_by
    )
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        loss, accuracy = evaluate(net, x, t)
        print(f"{name:5s} accuracy {accuracy:.4f}  loss {loss:.4f}  ({len(x)} images of {dataset})")
    return 0


def _train_description() -> str:
    """What ``chainrule train`` trains when no flag says otherwise, from the recipes."""
    small, book = DEFAULT_RECIPE["mnist-5k"], DEFAULT_RECIPE["mnist"]
    sizes = "-".join(map(str, [784, *NEW_RUN_DEFAULTS["hidden"], 10]))
    common = f"SGD lr {DEFAULT_SGD_LR:g}, batch {NEW_RUN_DEFAULTS['batch_size']}"
    return (
        f"Train by backpropagation. With no arguments: the book's {sizes} ReLU network as a "
        f"MultiLayerNet with init {small['init']} and weight decay {small['weight_decay']:g} "
        "(chapter 6's remedies: the book's recipe overfits the 4,000 embedded images), "
        f"{common}, {small['epochs']} epochs, on the embedded 5,000-image MNIST subset. "
        f"With --dataset mnist or fashion-mnist: the book's recipe, a TwoLayerNet with "
        f"initial scale 0.01 and no weight decay, {common}, {book['iters']:,} steps. "
        "With --model convnet: the book's SimpleConvNet and train_convnet.py recipe "
        f"(Adam lr 0.001, batch 100, initial scale 0.01; {CONVNET_5K_EPOCHS} epochs on "
        "mnist-5k, 20 on the full sets). --dropout and --batchnorm make the fully "
        "connected network chapter 6's MultiLayerNetExtend."
    )


def _dropout_ratio(text: str) -> float:
    ratio = positive_float(text)
    if ratio >= 1:
        raise argparse.ArgumentTypeError(f"expected a ratio in (0, 1), got {text!r}")
    return ratio


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.mnist import DATASETS
    from chainrule.optim import OPTIMIZERS
    from chainrule.train import SAMPLINGS
    from chainrule.viz.curves import FORMATS as PLOT_FORMATS

    train = commands.add_parser(
        "train",
        help="train a network on MNIST-like data",
        description=_train_description(),
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
