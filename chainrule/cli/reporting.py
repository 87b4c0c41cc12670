"""What a ``chainrule train`` run says and writes: its opening line, each evaluation, the
final line, ``--plot`` and ``--json``, and whether its learning rate wrecked it."""

from __future__ import annotations

import argparse

from chainrule.cli.progress import say
from chainrule.cli.starting import Run

# A finite but far too high learning rate does not stop training: it ends with a loss in
# the hundreds, or with every ReLU dead and one class answered for every image (the runs
# that set these thresholds: docs/reliability.md). So: a run is called diverged when its
# final training loss is above LOSS_RISE times its first step's, or when its accuracy is
# below CHANCE_MARGIN times chance after a step loss above LOSS_JUMP times the first
# (without such a jump, a run near chance had too few steps or too small a rate).
LOSS_RISE = 1.5
LOSS_JUMP = 3.0
CHANCE_MARGIN = 1.5


def format_evaluation(record) -> str:
    line = (
        f"epoch {record.epoch:6.2f}  step {record.step:6d}  "
        f"train loss {record.train_loss:.4f}  train acc {record.train_accuracy:.4f}"
    )
    if record.test_accuracy is not None:
        line += f"  test loss {record.test_loss:.4f}  test acc {record.test_accuracy:.4f}"
    return line


def describe_network(net, init: float | str | None) -> str:
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


def _describe_batch(batch: int, asked: int) -> str:
    """``batch 100``; and when --batch-size is more than the images, that fit() uses them all."""
    if batch == asked:
        return f"batch {batch}"
    return f"batch {batch} (the whole training set: --batch-size {asked} is more than its images)"


def describe_run(run: Run, data, total: int) -> str:
    """The network, data, optimiser, batch and length, as the opening line names them."""
    (x_train, _), (x_test, _) = data
    asked = run.settings["batch_size"]
    return (
        f"{describe_network(run.net, run.init)} on {run.settings['dataset']} "
        f"({len(x_train)} train / {len(x_test)} test), "
        f"{run.optimizer!r}, {_describe_batch(min(asked, len(x_train)), asked)}, {total} steps"
    )


def too_high_learning_rate(history, classes: int, lr: float) -> str | None:
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


def _write_json(path: str, data: dict) -> None:
    import json

    from chainrule.fileio import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def report(args: argparse.Namespace, run: Run, history, seconds: float, total: int, describe):
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
