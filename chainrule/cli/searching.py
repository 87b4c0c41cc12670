"""``chainrule search``: the book's random search over hyperparameters, on every core.

The search itself (sampling, one trial, the results file, ranking, the Dask engine) is
:mod:`chainrule.search`; this module turns flags into a search, prints what happens and
the ranked result, and draws the book's grid of curves.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from chainrule.cli.args import (
    PROG,
    non_negative_float,
    non_negative_int,
    parse_init,
    positive_float,
    positive_int,
)

# The book's search (chapter 6, hyperparameter_optimization.py): a six-layer ReLU network
# of 100 units (MultiLayerNet's default He initialisation), SGD, batch 100, 50 epochs, 100
# trials of lr = 10**U(-6, -2) and weight decay = 10**U(-8, -4), 20% held out to validate.
# (The book trains on 500 images to go faster; this uses all the training data it is given.)
BOOK_DEFAULTS = {
    "lr": "1e-6..1e-2",
    "weight_decay": "1e-8..1e-4",
    "hidden": "100",
    "layers": "6",
    "optimizer": "sgd",
    "batch_size": "100",
    "activation": "relu",
    "init": "he",
}
DEFAULT_TRIALS, DEFAULT_EPOCHS, DEFAULT_VALIDATION, DEFAULT_TOP = 100, 50, 0.2, 20


def _optimizer_name(text: str) -> str:
    from chainrule.optim import OPTIMIZERS

    if text.lower() not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(OPTIMIZERS)}, got {text!r}")
    return text.lower()


def _activation(text: str) -> str:
    if text not in ("relu", "sigmoid"):
        raise argparse.ArgumentTypeError(f"expected relu or sigmoid, got {text!r}")
    return text


def _init_number(text: str) -> float:
    value = parse_init(text)
    if isinstance(value, str):
        raise argparse.ArgumentTypeError(f"a range of --init takes numbers, got {text!r}")
    return value


# hyperparameter -> (what one value is, what a range's ends are (None: no range), integer)
DIMENSIONS = {
    "lr": (positive_float, positive_float, False),
    "weight_decay": (non_negative_float, positive_float, False),
    "hidden": (positive_int, positive_int, True),
    "layers": (positive_int, positive_int, True),
    "optimizer": (_optimizer_name, None, False),
    "batch_size": (positive_int, positive_int, True),
    "activation": (_activation, None, False),
    "init": (parse_init, _init_number, False),
}


SPACE_HELP = {
    "lr": "learning rate",
    "weight_decay": "L2 weight decay λ",
    "hidden": "width of every hidden layer",
    "layers": "number of hidden layers",
    "optimizer": "sgd, momentum, nesterov, adagrad, rmsprop, adam",
    "batch_size": "mini-batch size",
    "activation": "relu, sigmoid",
    "init": "initial weight scale: a number, he or xavier",
}


def _space_type(name: str):
    """An argparse ``type`` for one hyperparameter: ``LOW..HIGH`` (log-uniform), ``A,B,C``
    (one of them) or one value (fixed)."""
    one, end, integer = DIMENSIONS[name]

    def parse(text: str):
        from chainrule.search import Choice, LogUniform

        if ".." in text:
            if end is None:
                raise argparse.ArgumentTypeError(f"takes names, not a range: {text!r}")
            low, high = (end(part.strip()) for part in text.split("..", 1))
            try:
                return LogUniform(low, high, integer)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        if "," in text:
            options = tuple(dict.fromkeys(one(part.strip()) for part in text.split(",")))
            return Choice(options) if len(options) > 1 else options[0]
        return one(text.strip())

    return parse


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _have_dask() -> bool:
    return importlib.util.find_spec("distributed") is not None


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _label(name: str) -> str:
    return name.replace("_", " ")


def train_command(record: dict, data_dir: str | None = None) -> str:
    """The ``chainrule train`` command that trains a trial's network on all the training
    data (flags with exact values: floats as Python writes them back)."""
    parts = [PROG, "train", "--dataset", record["dataset"]]
    if data_dir:
        parts += ["--data-dir", data_dir]
    number = {int: str, float: repr}
    flags = (
        ("hidden", "--hidden"),
        ("layers", "--layers"),
        ("activation", "--activation"),
        ("init", "--init"),
        ("optimizer", "--optimizer"),
        ("lr", "--lr"),
        ("weight_decay", "--weight-decay"),
        ("batch_size", "--batch-size"),
        ("epochs", "--epochs"),
        ("seed", "--seed"),
    )
    for key, flag in flags:
        if record.get(key) is not None:
            parts += [flag, number.get(type(record[key]), str)(record[key])]
    return shlex.join(parts)


def _trial_line(record: dict, searched: list[str], done: int, total: int) -> str:
    accuracy = record["val_accuracy"]
    result = "diverged     " if accuracy is None else f"val acc {accuracy:.4f}"
    values = "  ".join(f"{_label(n)} {_format_value(record[n])}" for n in searched)
    return (
        f"trial {record['trial']:>4}  {result}  {values}  "
        f"{record['seconds']:.1f} s  [{done}/{total}]"
    )


def _table(ranked: list[dict], searched: list[str], top: int) -> str:
    head = ["rank", "trial", "val acc", "train acc", *(_label(n) for n in searched), "seconds"]
    rows = []
    for place, record in enumerate(ranked[:top], start=1):
        accuracy = record["val_accuracy"]
        rows.append(
            [
                str(place),
                str(record["trial"]),
                "diverged" if accuracy is None else f"{accuracy:.4f}",
                "" if record["train_accuracy"] is None else f"{record['train_accuracy']:.4f}",
                *(_format_value(record[n]) for n in searched),
                f"{record['seconds']:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [head, *rows])


def _check_outputs(results: Path, plot: str | None) -> None:
    """Fail before any work when an output cannot be written."""
    for label, path in (("--results", results), ("--plot", Path(plot) if plot else None)):
        if path is None:
            continue
        folder = path.parent
        if not folder.is_dir():
            raise FileNotFoundError(f"{label} {path}: the folder {folder} does not exist")
        target = path if path.exists() else folder
        if path.is_dir() or not os.access(target, os.W_OK):
            raise PermissionError(f"{label} {path}: cannot write there")


def _scheduler(text: str) -> str:
    from chainrule.search import scheduler_address

    try:
        return scheduler_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _pem_file(text: str) -> str:
    if not Path(text).is_file() or not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"no readable file {text!r}")
    return text


def _tls_files(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The ``--tls-*`` files as :class:`chainrule.search.TLSFiles` (None if none is given);
    a usage error unless all three come with a ``tls://`` scheduler, or, for a ``tls://``
    scheduler, none and Dask's configuration names them."""
    from chainrule.search import TLSFiles, tls_configured

    given = [args.tls_ca_file, args.tls_cert, args.tls_key]
    scheduler = args.scheduler or ""
    if any(given) and not scheduler.startswith("tls://"):
        parser.error("--tls-ca-file, --tls-cert and --tls-key are for --scheduler tls://...")
    if any(given) and not all(given):
        parser.error("a tls:// scheduler needs all three of --tls-ca-file, --tls-cert, --tls-key")
    if scheduler.startswith("tls://") and not any(given) and not tls_configured():
        parser.error(
            f"--scheduler {scheduler}: give this client's certificates with --tls-ca-file, "
            "--tls-cert and --tls-key (or in Dask's distributed.comm.tls configuration)"
        )
    return TLSFiles(*given) if all(given) else None


def cmd_search(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.errors import SearchError
    from chainrule.search import Search, results_lock
    from chainrule.viz.curves import FORMATS

    if args.plot and Path(args.plot).suffix.lower().lstrip(".") not in FORMATS:
        parser.error(f"--plot: cannot draw {Path(args.plot).name!r}; use a .png, .svg or .pdf name")
    tls = _tls_files(args, parser) if _have_dask() else None
    space = {name: getattr(args, name) for name in DIMENSIONS}
    search = Search(space, args.epochs, args.seed, args.validation, args.dataset)
    results = Path(args.results or f"search-{search.id}.jsonl")
    _check_outputs(results, args.plot)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise SearchError("--plot draws with matplotlib: pip install 'chainrule[plot]'")
    # Held from here to the end: a second search on the same file is refused at once.
    with results_lock(results):
        return _search(args, search, results, tls)


def _search(args: argparse.Namespace, search, results: Path, tls) -> int:
    from chainrule.cli.data import load_data
    from chainrule.search import read_results, split_validation

    finished = {record["trial"] for record in read_results(results, search)}
    todo = [n for n in range(args.trials) if n not in finished]
    jobs = _jobs(args, todo)
    (x_train, t_train), _ = load_data(args.dataset, args.data_dir, args.quiet)
    data = split_validation(x_train, t_train, args.validation, args.seed)
    searched = search.searched()
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    _announce(args, search, data, results, bool(finished), len(todo), say)

    done = len(set(range(args.trials)) - set(todo))

    def on_trial(record: dict) -> None:
        nonlocal done
        done += 1
        say(_trial_line(record, searched, done, args.trials))

    started = time.perf_counter()
    run = functools.partial(_run_search, search, args.trials, data, results, on_trial)
    ranked = _run_trials(args, run, jobs, todo, tls, say)
    if ranked is None:
        kept = len(read_results(results))  # the file, not a count: Ctrl-C may cut in between
        print(
            f"{PROG}: interrupted; finished trials kept in {results}: {kept} "
            "(run the same command to continue)",
            file=sys.stderr,
        )
        return 130
    seconds = time.perf_counter() - started

    ran = done - (args.trials - len(todo))
    if ran:
        say(f"done: {ran} trials in {seconds:.1f} s; {len(ranked)} in {results}")
    _report(args, ranked, searched, search.describe()["space"], len(x_train), say)
    return 0


def _jobs(args: argparse.Namespace, todo: list[int]) -> int | None:
    """The number of trials to run at once here (None with ``--scheduler``): ``--jobs``,
    else every core where Dask can run them, else one. A usage of Dask without Dask is a
    SearchError."""
    from chainrule.errors import SearchError

    jobs = args.jobs
    if jobs is None and args.scheduler is None:
        local = _have_dask() and importlib.util.find_spec("cryptography") is not None
        jobs = _cores() if local else 1
    if (args.scheduler or (jobs > 1 and len(todo) > 1)) and not _have_dask():
        raise SearchError(
            f"{'--scheduler' if args.scheduler else f'--jobs {jobs}'} runs trials on Dask, "
            "which is not installed: pip install 'chainrule[search]' (or give --jobs 1)"
        )
    return jobs


def _announce(args, search, data, results: Path, resumed: bool, left: int, say) -> None:
    """What the search will do: the data, the ranges searched and fixed, the results file."""
    say(
        f"search {search.id}: {args.trials} trials on {args.dataset} "
        f"({len(data[0][0]):,} train / {len(data[1][0]):,} validation, taken from the "
        f"training set; the test set is not used), {args.epochs} "
        + ("epoch" if args.epochs == 1 else "epochs")
        + " each"
    )
    searched = search.searched()
    described = search.describe()["space"]
    ranges = ", ".join(
        f"{_label(n)} {described[n]}" + (" (log-uniform)" if ".." in described[n] else "")
        for n in searched
    )
    fixed = ", ".join(f"{_label(n)} {v}" for n, v in described.items() if n not in searched)
    say(f"searching {ranges or 'nothing (every value is fixed)'}; fixed: {fixed or '-'}")
    there = f" ({args.trials - left} of {args.trials} trials already there)"
    say(
        f"results: {results}{there if resumed else ''}; "
        "run the same command again to continue an interrupted search"
    )


def _run_search(search, trials: int, data, results: Path, on_trial, **engine) -> list:
    """:func:`chainrule.search.run_search` of the command's network, with ``engine``'s
    ``client`` and ``blas_threads`` (none: here, one trial at a time)."""
    from chainrule.cli.recipes import network_and_optimizer
    from chainrule.search import run_search

    return run_search(
        search, trials, data, network_and_optimizer, results, on_trial=on_trial, **engine
    )


def _run_trials(args, run, jobs: int | None, todo: list[int], tls, say) -> list | None:
    """Run the trials left with ``run`` (:func:`_run_search` bound to the search), here or
    on Dask: the ranked records, or None after Ctrl-C."""
    # Dask may swallow the KeyboardInterrupt of a Ctrl-C while it waits for results and
    # return what finished: remember the signal, so the search still ends as interrupted.
    interrupted: list[bool] = []

    def on_sigint(signum: int, frame: object) -> None:
        interrupted.append(True)
        raise KeyboardInterrupt

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        if not todo or (args.scheduler is None and min(jobs, len(todo)) == 1):
            # One trial at a time here, on one BLAS thread: the same numbers as on a cluster.
            if todo:
                say("engine: this process, one trial at a time")
            ranked = run()
        else:
            workers = None if args.scheduler else min(jobs, len(todo))
            ranked = _run_on_dask(args, run, workers, tls, say)
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    return None if interrupted else ranked


def _run_on_dask(args, run, workers: int | None, tls, say) -> list:
    """``run`` on ``workers`` local Dask processes, or on the cluster of ``--scheduler``."""
    from chainrule.search import dask_client

    debug = args.debug or os.environ.get("CHAINRULE_DEBUG", "") not in ("", "0")
    with dask_client(workers, args.scheduler, tls=tls, logs=debug) as client:
        if args.scheduler:
            from chainrule.search import check_workers

            threads = check_workers(client)
            plain = args.scheduler.startswith("tcp://")
            say(
                f"engine: the Dask cluster at {args.scheduler}, {threads} trials at a time"
                + (
                    " (plain tcp://: whoever reaches it can run code on its workers)"
                    if plain
                    else ""
                )
            )
        else:
            say(f"engine: Dask, {workers} worker processes on this machine (TLS)")
        # Each trial holds BLAS to one thread: N worker processes × 1 thread keep N
        # cores busy; more threads per trial would fight over the same cores.
        return run(client=client, blas_threads=1)


def _report(args, ranked: list, searched: list, described: dict, train_size: int, say) -> None:
    """The table, the best trial's train command and the plot."""
    print(_table(ranked, searched, args.top))
    best = ranked[0]
    if best["val_accuracy"] is not None:
        print(
            f"best: trial {best['trial']}, validation accuracy {best['val_accuracy']:.4f}. "
            f"Train it on all {train_size:,} training images and test it with:"
        )
        print(f"  {train_command(best, args.data_dir)}")
    else:
        print("every trial diverged: try smaller learning rates")
    if args.plot:
        from chainrule.viz.search_plot import plot_search

        shown = min(args.top, len(ranked))
        title = (
            f"chainrule search: the {shown} best of {len(ranked)} trials by validation "
            f"accuracy ({'; '.join(f'{_label(n)} {described[n]}' for n in searched)}; "
            f"{args.epochs} epochs on {args.dataset})"
        )
        plot_search(ranked, args.plot, top=args.top, searched=searched, title=title)
        say(f"plot: {args.plot}")


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.mnist import DATASETS

    search = commands.add_parser(
        "search",
        help="random search over hyperparameters on a validation split (the book's chapter 6)",
        description="The book's random search: each trial trains a network with "
        "hyperparameters drawn from the ranges, on the training data less a held-out "
        "validation share, and is ranked by its validation accuracy; the test set is never "
        "used. Ranges: LOW..HIGH (log-uniform), A,B,C (one of them) or one value (fixed). "
        "Each finished trial is appended to the results file: run the same command "
        "again to continue an interrupted search.",
    )
    run = search.add_argument_group("search")
    run.add_argument(
        "--trials", type=positive_int, default=DEFAULT_TRIALS, metavar="N", help="default: 100"
    )
    run.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help="of each trial (default: 50)",
    )
    run.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="chooses the validation split and every trial's draws, >= 0 (default: 0)",
    )
    run.add_argument(
        "--validation",
        type=lambda text: _fraction(text),
        default=DEFAULT_VALIDATION,
        metavar="SHARE",
        help="share of the training data held out to validate (default: 0.2)",
    )
    engine = run.add_mutually_exclusive_group()
    engine.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="trials at a time, each in its own process on one core (default: every core; "
        "1 runs them in this process)",
    )
    engine.add_argument(
        "--scheduler",
        type=_scheduler,
        metavar="ADDRESS",
        help="run the trials on the Dask cluster of this scheduler (tcp://HOST:PORT, or "
        "tls://HOST:PORT with --tls-ca-file, --tls-cert and --tls-key)",
    )
    for flag, what in (
        ("--tls-ca-file", "the authority that signed the cluster's certificates"),
        ("--tls-cert", "this client's certificate"),
        ("--tls-key", "this client's private key"),
    ):
        run.add_argument(flag, type=_pem_file, metavar="PEM", help=f"for tls://: {what}")
    space = search.add_argument_group(
        "hyperparameters (RANGE: LOW..HIGH log-uniform, A,B,C one of them, or one value)"
    )
    for name, default in BOOK_DEFAULTS.items():
        space.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_space_type(name),
            default=_space_type(name)(default),
            metavar="RANGE",
            help=f"{SPACE_HELP[name]} (default: {default})",
        )
    data = search.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="mnist-5k", help="default: mnist-5k")
    data.add_argument("--data-dir", metavar="DIR", help="folder of mnist/fashion-mnist's files")
    out = search.add_argument_group("output")
    out.add_argument(
        "--results",
        metavar="FILE",
        help="JSON lines, one per finished trial (default: search-ID.jsonl, ID naming the "
        "search's options)",
    )
    out.add_argument(
        "--plot", metavar="PATH", help="the best trials' accuracy curves (.png, .svg, .pdf)"
    )
    out.add_argument(
        "--top",
        type=positive_int,
        default=DEFAULT_TOP,
        metavar="K",
        help="trials in the table and the plot (default: 20)",
    )
    out.add_argument("--quiet", action="store_true", help="only the table and the best command")
    search.set_defaults(run=cmd_search)


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value
