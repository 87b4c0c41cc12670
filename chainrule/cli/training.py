"""``chainrule train`` and ``chainrule evaluate``: training runs, checkpoints, metrics."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from chainrule import __version__
from chainrule.cli.args import (
    PROG,
    add_network_arguments,
    build_network,
    hidden_sizes,
    non_negative_float,
    parse_init,
    positive_float,
    positive_int,
)
from chainrule.errors import CheckpointError

# What `chainrule train` does for a flag not given, by dataset. On the full sets: the
# book's recipe, 10,000 steps from TwoLayerNet's 0.01 initial scale. On the 4,000 embedded
# images that recipe overfits and levels off at 89-90% test accuracy (measured over six
# seeds); He initialisation and a little weight decay, chapter 6's remedies, lift it to
# 90.7-91.4% after 60 epochs (a few seconds).
BOOK_RECIPE = {"iters": 10_000, "init": None, "weight_decay": 0.0}
DEFAULT_RECIPE = {
    "mnist-5k": {"epochs": 60, "init": "he", "weight_decay": 1e-3},
    "mnist": BOOK_RECIPE,
    "fashion-mnist": BOOK_RECIPE,
}
# --lr when not given: the book's chapter-5 recipe for SGD, each class's default otherwise.
DEFAULT_SGD_LR = 0.1


def _tqdm(quiet: bool):
    """tqdm's bar class, or None when --quiet or tqdm (an optional extra) is not installed."""
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _progress_bar(total: int, initial: int, quiet: bool):
    """A training bar on stderr, or None (see _tqdm)."""
    tqdm = _tqdm(quiet)
    if tqdm is None:
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)


def _say(bar, message: str, quiet: bool) -> None:
    if quiet:
        return
    if bar is not None:
        bar.write(message)
    else:
        print(message, flush=True)


def _load_data(dataset: str, data_dir: str | None, quiet: bool):
    from chainrule.data.mnist import load_mnist

    tqdm = _tqdm(quiet)
    bars = []

    def download_progress(done: int, total: int | None) -> None:
        if not bars or done < bars[-1].n:  # a file's first chunk, or a retry's
            if bars:
                bars[-1].close()
            bars.append(tqdm(total=total, unit="B", unit_scale=True, leave=False, desc="download"))
        bars[-1].update(done - bars[-1].n)

    try:
        progress = download_progress if tqdm is not None else None
        return load_mnist(dataset=dataset, data_dir=data_dir, progress=progress)
    finally:
        for bar in bars:
            bar.close()


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
    """``TwoLayerNet(784-50-10, relu, float32), init he, weight decay 0.001``."""
    text = f"{net!r}"
    if init is not None:
        text += f", init {init}"
    if net.weight_decay_lambda:
        text += f", weight decay {net.weight_decay_lambda:g}"
    return text


class _Interrupted(Exception):
    """Ctrl-C, raised at the end of a step so that a checkpoint is consistent."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


@contextlib.contextmanager
def _stop_at_step_boundary_on_ctrl_c():
    """While training, a first Ctrl-C only sets a flag (the list is non-empty then):
    the step in progress finishes, then training stops and saves. A second Ctrl-C
    interrupts at once, as usual."""
    interrupted: list[bool] = []

    def on_sigint(signum, frame) -> None:
        interrupted.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _restore_network(checkpoint, path: str):
    """The network a checkpoint describes, holding the checkpoint's weights."""
    from chainrule.checkpoint import check_params_match
    from chainrule.networks import MultiLayerNet

    try:
        net = MultiLayerNet.from_config(checkpoint.meta["network"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: no network description in this checkpoint ({error})"
        ) from None
    check_params_match(net.params, checkpoint.params, path)  # names the file and each mismatch
    net.load_params(checkpoint.params)
    return net


def network_and_optimizer(settings: dict):
    """The network and optimiser that ``chainrule train`` builds from these flag values.

    ``settings`` names them as the flags do, with underscores: ``hidden`` (a list of
    sizes, or one size repeated ``layers`` times), ``activation``, ``init``,
    ``weight_decay``, ``optimizer``, ``lr``, ``dtype``, ``seed``; a missing one (or None)
    takes train's default. ``chainrule search`` builds its trials here too, so that the
    train command it prints for a trial builds the very same network.
    """
    from chainrule.optim import make_optimizer

    hidden = settings["hidden"]
    hidden = [hidden] * settings.get("layers", 1) if isinstance(hidden, int) else list(hidden)
    options = argparse.Namespace(
        activation=settings.get("activation") or "relu", seed=settings.get("seed", 0)
    )
    net = build_network(
        options,
        hidden,
        settings.get("dtype") or "float32",
        settings.get("weight_decay") or 0.0,
        settings.get("init"),
    )
    name = settings.get("optimizer") or "sgd"
    lr = settings.get("lr")
    if lr is None and name == "sgd":
        lr = DEFAULT_SGD_LR
    return net, make_optimizer(name, **({} if lr is None else {"lr": lr}))


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import time

    from chainrule.checkpoint import load_checkpoint, save_checkpoint
    from chainrule.optim import make_optimizer
    from chainrule.train import History, fit, iters_per_epoch

    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        net = _restore_network(checkpoint, args.resume)
        try:
            opt_meta = dict(checkpoint.meta["optimizer"])
            optimizer = make_optimizer(opt_meta.pop("name"), **opt_meta)
            run = dict(checkpoint.meta["train"])
            history = History.from_dict(checkpoint.meta["history"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"{args.resume}: not a checkpoint written by 'chainrule train' ({error})"
            ) from None
        optimizer.load_state_dict(checkpoint.optimizer_state)
        start_step = checkpoint.step
        init = None  # the weights come from the checkpoint
        if args.epochs is not None or args.iters is not None:
            run["epochs"], run["iters"] = args.epochs, args.iters
    else:
        recipe = DEFAULT_RECIPE[args.dataset]
        init = args.init if args.init is not None else recipe["init"]
        decay = args.weight_decay if args.weight_decay is not None else recipe["weight_decay"]
        net, optimizer = network_and_optimizer(
            {
                "hidden": hidden_sizes(args, parser),
                "activation": args.activation,
                "init": init,
                "weight_decay": decay,
                "optimizer": args.optimizer,
                "lr": args.lr,
                "dtype": args.dtype,
                "seed": args.seed,
            }
        )
        if args.epochs is not None or args.iters is not None:
            length = {"epochs": args.epochs, "iters": args.iters}
        else:
            length = {"epochs": recipe.get("epochs"), "iters": recipe.get("iters")}
        run = {
            "dataset": args.dataset,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "sampling": args.sampling,
            **length,
        }
        history, start_step = History(), 0

    dataset = run["dataset"]
    (x_train, t_train), (x_test, t_test) = _load_data(dataset, args.data_dir, args.quiet)
    steps_per_epoch = iters_per_epoch(len(x_train), min(run["batch_size"], len(x_train)))
    total = run["iters"] if run["iters"] is not None else run["epochs"] * steps_per_epoch
    if start_step >= total:
        raise ValueError(
            f"{args.resume} is already at step {start_step} of {total}; "
            "pass a larger --epochs or --iters to train on"
        )
    optimizer_meta = {"name": optimizer.name, **optimizer.hyperparams}
    describe = (
        f"{_describe_network(net, init)} on {dataset} "
        f"({len(x_train)} train / {len(x_test)} test), "
        f"{optimizer!r}, batch {run['batch_size']}, {total} steps"
    )
    _say(
        None,
        (f"resuming at step {start_step}: " if start_step else "training ") + describe,
        args.quiet,
    )

    bar = _progress_bar(total, start_step, args.quiet)

    def on_step(step: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def save(step: int, history: History) -> None:
        if not args.save:
            return
        meta = {
            "network": net.config(),
            "optimizer": optimizer_meta,
            "train": run,
            "history": history.to_dict(),
            "chainrule_version": __version__,
        }
        save_checkpoint(
            args.save, net.params, optimizer_state=optimizer.state_dict(), step=step, meta=meta
        )

    started = time.perf_counter()
    try:
        with _stop_at_step_boundary_on_ctrl_c() as interrupted:

            def on_step_or_stop(step: int, loss: float) -> None:
                on_step(step, loss)
                if interrupted:
                    raise _Interrupted(step)

            history = fit(
                net,
                optimizer,
                x_train,
                t_train,
                x_test,
                t_test,
                batch_size=run["batch_size"],
                epochs=run["epochs"],
                iters=run["iters"],
                seed=run["seed"],
                sampling=run["sampling"],
                checkpoint_every=args.save_every,
                history=history,
                start_step=start_step,
                on_step=on_step_or_stop,
                on_evaluate=lambda record: _say(bar, _format_evaluation(record), args.quiet),
                on_checkpoint=save,
            )
    except _Interrupted as stop:
        if bar is not None:
            bar.close()  # before the message below; closing again in finally is a no-op
        if not args.save:
            print(
                f"{PROG}: interrupted at step {stop.step} (nothing saved: no --save)",
                file=sys.stderr,
            )
            return 130
        save(stop.step, history)
        print(
            f"{PROG}: interrupted at step {stop.step}; saved {args.save} "
            f"(continue with: {PROG} train --resume {args.save})",
            file=sys.stderr,
        )
        return 130
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    final = history.evaluations[-1]
    print(
        f"done in {seconds:.1f} s: test accuracy {final.test_accuracy:.4f}, "
        f"train accuracy {final.train_accuracy:.4f}" + (f"; saved {args.save}" if args.save else "")
    )
    if args.plot:
        from chainrule.viz.curves import plot_history

        plot_history(history, args.plot, title=describe)
        _say(None, f"plot: {args.plot}", args.quiet)
    if args.json:
        _write_json(
            args.json,
            {
                "train_accuracy": final.train_accuracy,
                "test_accuracy": final.test_accuracy,
                "train_loss": final.train_loss,
                "test_loss": final.test_loss,
                "seconds": seconds,
                "steps": total,
                "config": {"network": net.config(), "optimizer": optimizer_meta, "train": run},
                "history": history.to_dict(),
            },
        )
    return 0


def cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.checkpoint import load_checkpoint
    from chainrule.train import evaluate

    checkpoint = load_checkpoint(args.checkpoint)
    net = _restore_network(checkpoint, args.checkpoint)
    dataset = args.dataset or checkpoint.meta.get("train", {}).get("dataset", "mnist-5k")
    (x_train, t_train), (x_test, t_test) = _load_data(dataset, args.data_dir, args.quiet)
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        loss, accuracy = evaluate(net, x, t)
        print(f"{name:5s} accuracy {accuracy:.4f}  loss {loss:.4f}  ({len(x)} images of {dataset})")
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.mnist import DATASETS
    from chainrule.optim import OPTIMIZERS
    from chainrule.train import SAMPLINGS

    train = commands.add_parser(
        "train",
        help="train a network on MNIST-like data",
        description="Train by backpropagation. With no arguments: the book's TwoLayerNet "
        "(784-50-10, SGD lr 0.1, batch 100) on the embedded 5,000-image MNIST subset.",
    )
    add_network_arguments(train)
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
        help="folder with the four IDX files (.gz or raw) of mnist/fashion-mnist",
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
        default="sgd",
        help="default: sgd",
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
        help="passes over the training data (default: 60 on mnist-5k)",
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
    out.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) as training goes")
    out.add_argument(
        "--save-every",
        type=positive_int,
        metavar="STEPS",
        help="checkpoint every STEPS steps (default: at each epoch's end)",
    )
    out.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    out.add_argument("--plot", metavar="PATH", help="draw loss and accuracy curves (.png, .svg)")
    out.add_argument("--json", metavar="PATH", help="write final metrics and history as JSON")
    out.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy and loss of a saved checkpoint",
        description="Load a checkpoint written by 'chainrule train --save' and evaluate it.",
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT")
    evaluate.add_argument(
        "--dataset", choices=DATASETS, help="default: the dataset the checkpoint was trained on"
    )
    evaluate.add_argument("--data-dir", metavar="DIR")
    evaluate.add_argument("--quiet", action="store_true", help="no download progress bar")
    evaluate.set_defaults(run=cmd_evaluate)
