"""``chainrule run SCRIPT [ARGS...]``: a script of the book's repository, run as ``python
SCRIPT ARGS`` would run it, with chainrule in place of the book's modules.

The script gets the working directory, ``sys.argv``, ``sys.path[0]`` (its folder) and
``__name__ == "__main__"`` that Python gives it, and its exit status is the run's. Its
``common.*``, ``dataset.mnist`` and chapter network modules are chainrule's (see
:mod:`chainrule.book`); ``pickle.load`` reads only plain arrays
(:mod:`chainrule.safepickle`). Nothing is written into the checkout but what the script
writes: no ``mnist.pkl``, no ``__pycache__``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import runpy
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from chainrule.cli.args import PROG
from chainrule.data import DATASETS
from chainrule.errors import CheckpointError, DataError, UnsafePickleError

__all__ = ["add_parser", "cmd_run"]

_DATA_NAMES = {
    "mnist": "full MNIST",
    "mnist-5k": "mnist-5k, the 5,000 digits inside chainrule: offline",
    "fashion-mnist": "Fashion-MNIST",
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run a script of the book's repository on chainrule",
        description="Run SCRIPT of a checkout of the book's repository as 'python SCRIPT "
        "ARGS' would, with chainrule standing in for its common/ modules, dataset/mnist.py "
        "and its network files (two_layer_net, simple_convnet, deep_convnet). MNIST is "
        "found as 'chainrule train --dataset mnist' finds it; pickles are read as plain "
        "arrays only.",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--data-dir", metavar="DIR", help="the folder holding the MNIST files")
    source.add_argument("--dataset", choices=DATASETS, default="mnist", help="default: mnist")
    run.add_argument(
        "--book-layers",
        action="store_true",
        help="keep the book's own network classes (they then run on chainrule's layers)",
    )
    run.add_argument("script", metavar="SCRIPT")
    run.add_argument("arguments", nargs=argparse.REMAINDER, metavar="ARGS")
    run.set_defaults(run=cmd_run)


def _summary(modules: dict[str, str], dataset: str) -> str:
    """The one line saying what stands in for what."""
    common = sorted(name.split(".", 1)[1] for name in modules if name.startswith("common."))
    local = [name for name in modules if "." not in name]
    parts = [f"common.{{{','.join(common)}}}", *local]
    return (
        f"{PROG} run: chainrule stands in for {', '.join(parts)} and dataset.mnist "
        f"({_DATA_NAMES[dataset]}); pickle.load reads plain arrays only"
    )


def _safe_load(file: BinaryIO, **_: Any) -> Any:
    from chainrule.safepickle import loads_arrays

    return loads_arrays(file.read(), getattr(file, "name", "<pickle>"))


def _safe_loads(data: bytes, **_: Any) -> Any:
    from chainrule.safepickle import loads_arrays

    return loads_arrays(data)


@contextmanager
def _as_python_runs(script: Path, arguments: list[str]) -> Iterator[None]:
    """``sys.argv``, ``sys.path[0]``, no bytecode files and safe pickles for the script."""
    saved = (sys.argv, list(sys.path), sys.dont_write_bytecode, pickle.load, pickle.loads)
    sys.argv = [str(script), *arguments]
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    sys.dont_write_bytecode = True  # no __pycache__ in the learner's checkout
    pickle.load, pickle.loads = _safe_load, _safe_loads
    try:
        yield
    finally:
        sys.argv, sys.path[:], sys.dont_write_bytecode, pickle.load, pickle.loads = saved


def _print_traceback(error: BaseException, script: Path) -> None:
    """The traceback Python would print: from the script's first frame on."""
    frames = traceback.extract_tb(error.__traceback__)
    target = os.path.realpath(script)
    start = next((i for i, f in enumerate(frames) if os.path.realpath(f.filename) == target), 0)
    print("Traceback (most recent call last):", file=sys.stderr)
    print("".join(traceback.format_list(frames[start:])), end="", file=sys.stderr)
    print("".join(traceback.format_exception_only(type(error), error)), end="", file=sys.stderr)


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.book import mnist
    from chainrule.book.imports import chosen_stand_ins, stand_ins

    script = Path(args.script)
    if not script.is_file():
        parser.error(f"can't open file {str(script)!r}: no such file")
    modules = chosen_stand_ins(script.resolve().parent.name, args.book_layers)
    dataset = "mnist" if args.data_dir is not None else args.dataset
    mnist.use(dataset, args.data_dir)
    print(_summary(modules, dataset), file=sys.stderr, flush=True)
    try:
        with _as_python_runs(script, args.arguments), stand_ins(modules):
            runpy.run_path(str(script), run_name="__main__")
    except (DataError, CheckpointError, UnsafePickleError) as error:
        print(f"{PROG} run: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        _print_traceback(error, script)
        return 130
    except Exception as error:  # the script's own failure: shown as Python shows it
        _print_traceback(error, script)
        return 1
    finally:
        sys.stdout.flush()
    return 0
