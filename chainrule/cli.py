"""The ``chainrule`` command line: the only module that parses arguments, prints and exits.

Exit status: 0 success, 1 a failure (a failed check, bad data, a diverged run),
2 a usage error. A user's mistake prints one line on stderr, never a traceback;
``--debug`` (or ``CHAINRULE_DEBUG=1``) shows the traceback for bug reports.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

import numpy as np

from chainrule import __version__
from chainrule.errors import ChainruleError

PROG = "chainrule"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def one_line(message: str) -> str:
    """A multi-line message (a list of places looked in, say) folded onto one line."""
    lines = [line.strip().removeprefix("- ") for line in message.splitlines()]
    return "; ".join(line.rstrip(".;:") for line in lines if line) + "."


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
positive_float = _number_type(float, lambda v: np.isfinite(v) and v > 0, "a positive number")
non_negative_float = _number_type(float, lambda v: np.isfinite(v) and v >= 0, "a number >= 0")


def _hidden_sizes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[int]:
    """``--hidden`` sizes, repeated to ``--layers`` hidden layers when one size is given."""
    hidden = list(args.hidden)
    if args.layers is not None:
        if len(hidden) == 1:
            hidden *= args.layers
        elif len(hidden) != args.layers:
            parser.error(f"--layers {args.layers} does not match {len(hidden)} --hidden sizes")
    return hidden


def _add_network_arguments(
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
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _parse_init(text: str) -> float | str:
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


def _build_network(
    args: argparse.Namespace,
    hidden: list[int],
    dtype: str,
    weight_decay: float = 0.0,
    init: float | str | None = None,
):
    """The book's TwoLayerNet for one ReLU hidden layer, else a MultiLayerNet.

    The initial scale defaults to each class's book default: 0.01 for the two-layer net,
    He or Xavier (by activation) for deeper ones.
    """
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    input_size, output_size = 784, 10
    if init is None:
        init = 0.01 if len(hidden) == 1 else args.activation
    if len(hidden) == 1 and args.activation == "relu" and not weight_decay:
        return TwoLayerNet(input_size, hidden[0], output_size, init, dtype=dtype, seed=args.seed)
    return MultiLayerNet(
        input_size,
        hidden,
        output_size,
        activation=args.activation,
        weight_init_std=init,
        weight_decay_lambda=weight_decay,
        dtype=dtype,
        seed=args.seed,
    )


def cmd_gradcheck(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.gradcheck import check_gradients

    hidden = _hidden_sizes(args, parser)
    net = _build_network(args, hidden, "float64")
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.samples, net.input_size))
    t = rng.integers(0, net.output_size, args.samples)
    description = (
        f"Gradient check: {net!r}, {args.samples} random samples of MNIST shape, seed {args.seed}"
    )
    report = check_gradients(
        net, x, t, h=args.step, tolerance=args.tolerance, description=description
    )
    print(report.format())
    return 0 if report.passed else 1


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


def _progress_bar(total: int, initial: int, quiet: bool):
    """A tqdm bar on stderr, or None when --quiet or tqdm is not installed."""
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
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

    bars = {}

    def download_progress(done: int, total: int | None) -> None:
        if quiet:
            return
        from tqdm import tqdm

        bar = bars.get("bar")
        if bar is None or done < bar.n:
            bar = bars["bar"] = tqdm(
                total=total, unit="B", unit_scale=True, leave=False, desc="download"
            )
        bar.update(done - bar.n)

    try:
        return load_mnist(dataset=dataset, data_dir=data_dir, progress=download_progress)
    finally:
        if "bar" in bars:
            bars["bar"].close()


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


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import time

    from chainrule.checkpoint import load_checkpoint, save_checkpoint
    from chainrule.networks import MultiLayerNet
    from chainrule.optim import make_optimizer
    from chainrule.train import History, fit, iters_per_epoch

    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        meta = checkpoint.meta
        try:
            net = MultiLayerNet.from_config(meta["network"])
            opt_meta = dict(meta["optimizer"])
            run = dict(meta["train"])
            history = History.from_dict(meta["history"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{args.resume}: not a checkpoint written by 'chainrule train' ({error})"
            ) from None
        net.load_params(checkpoint.params)
        optimizer = make_optimizer(opt_meta.pop("name"), **opt_meta)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        start_step = checkpoint.step
        init = None  # the weights come from the checkpoint
        if args.epochs is not None or args.iters is not None:
            run["epochs"], run["iters"] = args.epochs, args.iters
    else:
        hidden = _hidden_sizes(args, parser)
        recipe = DEFAULT_RECIPE[args.dataset]
        init = args.init if args.init is not None else recipe["init"]
        decay = args.weight_decay if args.weight_decay is not None else recipe["weight_decay"]
        net = _build_network(args, hidden, args.dtype, decay, init)
        name = args.optimizer
        lr = args.lr if args.lr is not None else (DEFAULT_SGD_LR if name == "sgd" else None)
        optimizer = make_optimizer(name, **({} if lr is None else {"lr": lr}))
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
            bar.close()
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
    from chainrule.networks import MultiLayerNet
    from chainrule.train import evaluate

    checkpoint = load_checkpoint(args.checkpoint)
    try:
        net = MultiLayerNet.from_config(checkpoint.meta["network"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{args.checkpoint}: no network description in this checkpoint ({error})"
        ) from None
    net.load_params(checkpoint.params)
    dataset = args.dataset or checkpoint.meta.get("train", {}).get("dataset", "mnist-5k")
    (x_train, t_train), (x_test, t_test) = _load_data(dataset, args.data_dir, args.quiet)
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        loss, accuracy = evaluate(net, x, t)
        print(f"{name:5s} accuracy {accuracy:.4f}  loss {loss:.4f}  ({len(x)} images of {dataset})")
    return 0


def _example_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """example_graph's options from --hidden/--layers/--activation/--samples/--seed."""
    options = {"activation": args.activation, "samples": args.samples, "seed": args.seed}
    if args.hidden is not None:
        options["hidden"] = _hidden_sizes(args, parser)
    return options


def cmd_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.explain import example_graph, example_title
    from chainrule.viz.graph import render, to_dot

    options = _example_options(args, parser)
    graph = example_graph(args.name, **options)
    title = args.title or example_title(
        args.name, hidden=options.get("hidden"), samples=args.samples
    )
    dot = to_dot(graph, show_grad=not args.no_grad, title=title)
    if args.output is None:
        print(dot, end="")
    else:
        print(f"wrote {render(dot, args.output)}")
    return 0


def cmd_explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.explain import example_graph, explain

    graph = example_graph(args.name, **_example_options(args, parser))
    print(explain(graph, color=args.color), end="")
    return 0


def cmd_show_weights(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.checkpoint import load_checkpoint
    from chainrule.viz.weights import plot_weights

    checkpoint = load_checkpoint(args.checkpoint)
    if "W1" not in checkpoint.params:
        raise ValueError(f"{args.checkpoint}: no first-layer weights W1 in this checkpoint")
    W1 = checkpoint.params["W1"]
    title = (
        f"first-layer weights W1 ({W1.shape[0]}×{W1.shape[1]}) of {args.checkpoint}, "
        f"step {checkpoint.step}"
    )
    print(f"wrote {plot_weights(W1, args.output, title=title)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Backpropagation through a computational graph of layers, "
        "as chapter 5 of 'Deep Learning from Scratch' teaches it.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (for bug reports)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gradcheck = commands.add_parser(
        "gradcheck",
        help="compare backprop gradients with central differences",
        description="Build the book's TwoLayerNet (or a MultiLayerNet) in float64 on random data "
        "of MNIST shape and compare every parameter's backprop gradient with central differences.",
    )
    _add_network_arguments(gradcheck)
    gradcheck.add_argument(
        "--samples", type=positive_int, default=3, help="batch size (default: 3)"
    )
    gradcheck.add_argument("--step", type=positive_float, default=1e-4, help="h (default: 1e-4)")
    gradcheck.add_argument(
        "--tolerance",
        type=positive_float,
        default=1e-6,
        help="largest relative error that passes (default: 1e-6)",
    )
    gradcheck.set_defaults(run=cmd_gradcheck)

    from chainrule.data.mnist import DATASETS
    from chainrule.optim import OPTIMIZERS
    from chainrule.train import SAMPLINGS

    train = commands.add_parser(
        "train",
        help="train a network on MNIST-like data",
        description="Train by backpropagation. With no arguments: the book's TwoLayerNet "
        "(784-50-10, SGD lr 0.1, batch 100) on the embedded 5,000-image MNIST subset.",
    )
    _add_network_arguments(train)
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
        type=_parse_init,
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

    from chainrule.explain import EXAMPLE_NAMES

    graph_help = "draw a worked example's graph: values above the arrows, gradients below"
    explain_help = "trace a worked example's backward pass node by node, with its numbers"
    for command, run, help_text in (
        ("graph", cmd_graph, graph_help),
        ("explain", cmd_explain, explain_help),
    ):
        sub = commands.add_parser(command, help=help_text, description=help_text + ".")
        sub.add_argument(
            "name",
            metavar="NAME",
            choices=EXAMPLE_NAMES,
            help=f"one of: {', '.join(EXAMPLE_NAMES)}",
        )
        _add_network_arguments(
            sub, None, "hidden sizes of the network examples (default: 50; 50 50)"
        )
        sub.add_argument(
            "--samples",
            type=positive_int,
            default=2,
            help="MNIST digits in the networks' batch (default: 2)",
        )
        sub.set_defaults(run=run)
        if command == "graph":
            sub.add_argument(
                "-o",
                "--output",
                metavar="PATH",
                help="write .dot, .svg or .png (default: print the DOT text)",
            )
            sub.add_argument(
                "--no-grad",
                action="store_true",
                help="the forward pass alone: values, no gradients",
            )
            sub.add_argument("--title", help="a heading above the graph")
        else:
            sub.add_argument(
                "--color",
                action="store_true",
                help="gradients in red, headings bold (ANSI, for a terminal)",
            )

    show_weights = commands.add_parser(
        "show-weights",
        help="draw a checkpoint's first-layer weights as 28×28 images",
        description="Draw the first layer's weights W1 of a checkpoint, one image per hidden unit.",
    )
    show_weights.add_argument("checkpoint", metavar="CHECKPOINT")
    show_weights.add_argument(
        "-o", "--output", metavar="PATH", required=True, help="the picture to write (.png or .svg)"
    )
    show_weights.set_defaults(run=cmd_show_weights)

    from chainrule import benchmark

    bench = commands.add_parser(
        "bench",
        help="time training steps against PyTorch and the book's NumPy code",
        description=benchmark.__doc__.split("\n\n")[0],
    )
    benchmark.add_arguments(bench)
    bench.set_defaults(run=benchmark.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("CHAINRULE_DEBUG", "") not in ("", "0")
    try:
        return args.run(args, parser)
    except (ChainruleError, OSError, ValueError) as error:
        if debug:
            raise
        print(f"{PROG}: error: {one_line(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
