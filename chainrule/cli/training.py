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
    output_path,
    parse_init,
    positive_float,
    positive_int,
    suffixes,
)
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


def _stderr_is_a_terminal() -> bool:
    return sys.stderr.isatty()


def _tqdm(quiet: bool):
    """tqdm's bar class, or None when --quiet, when stderr is no terminal (a bar's ``\\r``
    redraws would fill a log: the line per epoch says enough), or when tqdm (an optional
    extra) is not installed."""
    if quiet or not _stderr_is_a_terminal():
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


def _load_data(
    dataset: str, data_dir: str | None, quiet: bool, flatten: bool = True, remembered_by=None
):
    """The data set's two splits; ``remembered_by``: the checkpoint that named ``data_dir``
    (not the user's --data-dir), for the message when that folder is gone."""
    from chainrule.data.mnist import load_mnist

    _check_data_dir(dataset, data_dir, remembered_by)
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
        return load_mnist(dataset=dataset, data_dir=data_dir, progress=progress, flatten=flatten)
    finally:
        for bar in bars:
            bar.close()


def _check_data_dir(dataset: str, data_dir: str | None, remembered_by=None) -> None:
    """A --data-dir must be an existing folder: one the user named is never created, and
    nothing is downloaded into a folder that was mistyped."""
    if data_dir is None or dataset == "mnist-5k":
        return
    from pathlib import Path

    from chainrule.errors import DataError

    folder = Path(data_dir).expanduser()
    if folder.is_dir():
        return
    if remembered_by is not None:
        raise DataError(
            f"{remembered_by} was trained on {dataset} from {data_dir}, which is no longer a "
            "folder; pass the folder that holds the files now with --data-dir DIR"
        )
    if folder.exists():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder of IDX files")
    raise DataError(
        f"--data-dir {data_dir}: no such folder ({PROG} fetch {dataset} {data_dir} "
        "downloads the files into it)"
    )


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


def _running_stats(net) -> dict:
    """Batch normalisation's running statistics by layer name (not parameters, but
    inference needs them, so checkpoints carry them in their description)."""
    from chainrule.layers import BatchNormalization

    return {
        name: {"running_mean": layer.running_mean, "running_var": layer.running_var}
        for name, layer in net.layers.items()
        if isinstance(layer, BatchNormalization) and layer.running_mean is not None
    }


def _dropout_states(net) -> dict:
    """Each Dropout layer's random generator state by layer name, so that a resumed run
    draws the masks the uninterrupted one would (plain numbers: JSON in the checkpoint)."""
    from chainrule.layers import Dropout

    return {
        name: layer.rng.bit_generator.state
        for name, layer in net.layers.items()
        if isinstance(layer, Dropout)
    }


def _build_network(args: argparse.Namespace, parser, hidden: list[int], decay: float, init):
    """The network a new run's flags ask for: SimpleConvNet for --model convnet, a
    MultiLayerNetExtend with --dropout or --batchnorm, else build_network's."""
    import numpy as np

    from chainrule.networks import DeepConvNet, MultiLayerNetExtend, SimpleConvNet

    if args.model == "deepconvnet":  # chapter 8's; its He initialisation is the book's
        return DeepConvNet((1, 28, 28), dtype=args.dtype, seed=args.seed)
    if args.model == "convnet":
        return SimpleConvNet(
            (1, 28, 28), hidden_size=100, output_size=10, weight_init_std=init,
            dtype=args.dtype, seed=args.seed,
        )  # fmt: skip
    if args.dropout is None and not args.batchnorm:
        return build_network(args, hidden, args.dtype, decay, init)
    return MultiLayerNetExtend(
        784,
        hidden,
        10,
        activation=args.activation,
        weight_init_std=args.activation if init is None else init,
        weight_decay_lambda=decay,
        use_dropout=args.dropout is not None,
        dropout_ration=0.5 if args.dropout is None else args.dropout,
        use_batchnorm=bool(args.batchnorm),
        dtype=np.dtype(args.dtype),
        seed=args.seed,
    )


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


def _load_described(path: str, to_resume: bool):
    """The checkpoint at ``path``, its description checked against the schema, and its
    stored weights against the network the description gives, before any is read."""
    from chainrule.checkpoint import load_checkpoint
    from chainrule.cli.description import check_description, parameter_shapes

    def expected(meta: dict) -> dict:
        check_description(meta, path, to_resume=to_resume)
        dtype = meta["network"]["dtype"]
        return {name: (shape, dtype) for name, shape in parameter_shapes(meta["network"]).items()}

    return load_checkpoint(path, expected_params=expected)


def _restore_network(checkpoint, path: str):
    """The network a checkpoint describes, holding the checkpoint's weights (which must be
    finite: NaN weights would evaluate to ``loss nan`` as if that were a result)."""
    import numpy as np

    from chainrule.checkpoint import check_params_match
    from chainrule.networks import network_from_config

    try:
        net = network_from_config(checkpoint.meta["network"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: no network description in this checkpoint ({error})"
        ) from None
    broken = [name for name, value in checkpoint.params.items() if not np.isfinite(value).all()]
    if broken:
        raise CheckpointError(
            f"{path}: the weights {', '.join(broken[:5])} hold NaN or infinity (a diverged "
            "run); refused"
        )
    # The one check: it names the file and every mismatch, dtypes included, so the
    # weights are copied in directly (net.load_params would check the shapes again).
    check_params_match(net.params, checkpoint.params, path)
    for name, param in net.params.items():
        param[...] = checkpoint.params[name]  # in place: the layers hold these arrays
    for name, stats in checkpoint.meta.get("running_stats", {}).items():
        layer = net.layers.get(name)
        if layer is None or not hasattr(layer, "running_mean"):
            raise CheckpointError(f"{path}: running statistics for {name}, not in the network")
        width = layer.gamma.shape
        for key in ("running_mean", "running_var"):
            if np.shape(stats[key]) != width:
                raise CheckpointError(
                    f"{path}: {name}'s {key} has {len(stats[key])} values, the layer {width[0]}"
                )
        layer.running_mean = np.asarray(stats["running_mean"], dtype=net.dtype)
        layer.running_var = np.asarray(stats["running_var"], dtype=net.dtype)
    for name, state in checkpoint.meta.get("dropout_rng", {}).items():
        layer = net.layers.get(name)
        if layer is None or not hasattr(layer, "rng"):
            raise CheckpointError(f"{path}: a dropout random state for {name}, not in the network")
        try:
            layer.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"{path}: the random state of {name}'s dropout masks is not one NumPy reads "
                f"({error})"
            ) from None
    return net


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


def _resumed_run(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The network, optimiser, run settings, history and step saved in --resume, with the
    flags that may change (--epochs or --iters, --lr) applied; and a note of the --lr."""
    from chainrule.optim import make_optimizer
    from chainrule.train import History

    if args.save is None:  # the resumed run keeps saving where it was saved
        try:
            args.save = output_path()(args.resume)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--resume {args.resume} would be saved to: {error}; give --save PATH")
    checkpoint = _load_described(args.resume, to_resume=True)
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
    if len(history.losses) != checkpoint.step:
        raise CheckpointError(
            f"{args.resume}: its history holds {len(history.losses)} losses for "
            f"{checkpoint.step} steps"
        )
    changed = _changed_on_resume(args, parser, net, optimizer.name, run)
    if changed:
        parser.error(
            f"--resume {args.resume} continues the checkpoint's run and cannot change "
            f"{', '.join(changed)}; leave {'them' if len(changed) > 1 else 'it'} out, "
            "or start a new run without --resume"
        )
    optimizer.load_state_dict(checkpoint.optimizer_state)
    note = ""
    if args.lr is not None and args.lr != optimizer.lr:
        note = f" with --lr {args.lr:g} (was {optimizer.lr:g})"
        optimizer.lr = args.lr
    if args.epochs is not None or args.iters is not None:
        run["epochs"], run["iters"] = args.epochs, args.iters
    if args.data_dir is not None:
        run["data_dir"] = _absolute(args.data_dir)
    return net, optimizer, run, history, checkpoint.step, note


def _absolute(folder: str) -> str:
    """A --data-dir as the checkpoint keeps it: absolute, so that it is found from any
    working directory."""
    from pathlib import Path

    return str(Path(folder).expanduser().absolute())


def _new_run(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The network, optimiser and run settings the flags and the dataset's recipe ask for,
    and the initialisation used."""
    from chainrule.optim import make_optimizer

    if args.model in ("convnet", "deepconvnet"):
        given = [f"--{name}" for name in MLP_ONLY if getattr(args, name) is not None]
        if args.weight_decay:
            given.append("--weight-decay")
        if given:
            network = "SimpleConvNet" if args.model == "convnet" else "DeepConvNet"
            parser.error(f"--model {args.model} ({network}) takes no {', '.join(given)}")
        if args.optimizer is None:
            args.optimizer = CONVNET_OPTIMIZER
    for name, default in NEW_RUN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, list(default) if isinstance(default, list) else default)
    hidden = hidden_sizes(args, parser)
    recipes = {"mlp": DEFAULT_RECIPE, "convnet": CONVNET_RECIPE}.get(args.model, DEEPCONVNET_RECIPE)
    recipe = recipes[args.dataset]
    init = args.init if args.init is not None else recipe["init"]
    decay = args.weight_decay if args.weight_decay is not None else recipe["weight_decay"]
    net = _build_network(args, parser, hidden, decay, init)
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
        "init": init,  # with the seed, it rebuilds the initial weights (show-weights --before)
        **length,
    }
    if args.data_dir is not None:
        run["data_dir"] = _absolute(args.data_dir)
    return net, optimizer, run, init


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

    from chainrule.checkpoint import save_checkpoint
    from chainrule.train import History, LambdaCallback, Resume, fit, iters_per_epoch

    if args.resume:
        net, optimizer, run, history, start_step, lr_note = _resumed_run(args, parser)
        init = None  # the weights come from the checkpoint
    else:
        net, optimizer, run, init = _new_run(args, parser)
        history, start_step, lr_note = History(), 0, ""

    dataset = run["dataset"]
    (x_train, t_train), (x_test, t_test) = _load_data(
        dataset,
        run.get("data_dir"),
        args.quiet,
        flatten=not _is_convnet(net),
        remembered_by=args.resume if args.resume and args.data_dir is None else None,
    )
    batch = min(run["batch_size"], len(x_train))  # as fit() clamps it
    steps_per_epoch = iters_per_epoch(len(x_train), batch)
    total = run["iters"] if run["iters"] is not None else run["epochs"] * steps_per_epoch
    if start_step >= total:
        raise ArgumentError(
            f"{args.resume} is already at step {start_step} of {total}; "
            "pass a larger --epochs or --iters to train on"
        )
    optimizer_meta = {"name": optimizer.name, **optimizer.hyperparams}
    describe = (
        f"{_describe_network(net, init)} on {dataset} "
        f"({len(x_train)} train / {len(x_test)} test), "
        f"{optimizer!r}, {_describe_batch(batch, run['batch_size'])}, {total} steps"
    )
    _say(
        None,
        (f"resuming at step {start_step}{lr_note}: " if args.resume else "training ") + describe,
        args.quiet,
    )

    bar = _progress_bar(total, start_step, args.quiet)

    def on_step(step: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def save(step: int, history: History) -> None:
        import numpy as np

        if not args.save:
            return
        # fit checks this before each checkpoint it asks for; an interrupted run's save
        # is the caller's, so it is checked here too: no NaN ever replaces a good file.
        if not all(np.isfinite(p).all() for p in net.params.values()):
            raise TrainingError(
                f"the parameters are not finite at step {step}; {args.save} is left as it was"
            )
        meta = {
            "network": net.config(),
            "optimizer": optimizer_meta,
            "train": run,
            "history": history.to_dict(),
            "chainrule_version": __version__,
        }
        stats, masks = _running_stats(net), _dropout_states(net)
        if stats:
            meta["running_stats"] = stats
        if masks:
            meta["dropout_rng"] = masks
        save_checkpoint(
            args.save, net.params, optimizer_state=optimizer.state_dict(), step=step, meta=meta
        )

    started = time.perf_counter()
    try:
        with _stop_at_step_boundary_on_signal() as received:

            def on_step_or_stop(step: int, loss: float) -> None:
                on_step(step, loss)
                if received:
                    raise _Interrupted(step, received[0])

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
                threads=args.threads,
                resume=Resume(history, start_step),
                callbacks=[
                    LambdaCallback(
                        on_step=on_step_or_stop,
                        on_evaluate=lambda record: _say(
                            bar, _format_evaluation(record), args.quiet
                        ),
                        on_checkpoint=save,
                        checkpoint_every=args.save_every,
                    )
                ],
            )
    except _Interrupted as stop:
        if bar is not None:
            bar.close()  # before the message below; closing again in finally is a no-op
        return _save_when_stopped(stop, args.save, save, history)
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
    # Checked last, so that the plot, the JSON and the checkpoint show what happened.
    wrecked = _too_high_learning_rate(history, net.output_size, optimizer.lr)
    if wrecked is not None:
        raise TrainingError(wrecked)
    return 0


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
    from chainrule.train import evaluate

    checkpoint = _load_described(args.checkpoint, to_resume=False)
    net = _restore_network(checkpoint, args.checkpoint)
    trained = checkpoint.meta.get("train", {})
    dataset = args.dataset or trained.get("dataset", "mnist-5k")
    data_dir, remembered_by = args.data_dir, None
    if data_dir is None and dataset == trained.get("dataset"):
        data_dir = trained.get("data_dir")  # where the run found its data
        remembered_by = args.checkpoint
    (x_train, t_train), (x_test, t_test) = _load_data(
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
