"""The ``chainrule`` command line: the only package that parses arguments, prints and exits.

Exit status: 0 success, 1 a failure (a failed check, bad data, a diverged run),
2 a usage error. A user's mistake prints one line on stderr, never a traceback;
``--debug`` (or ``CHAINRULE_DEBUG=1``) shows the traceback for bug reports.

One module per command or group of commands: ``gradchecking``, ``training`` (train,
with ``starting``, ``resuming``, ``stopping``, ``reporting`` and ``recipes`` beside it),
``evaluating`` (evaluate), ``pictures`` (graph, explain, show-weights); ``args`` holds
the shared argument types.
"""

from __future__ import annotations

import argparse
import difflib
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from chainrule import __version__
from chainrule.cli import (
    convert,
    evaluating,
    fetching,
    gradchecking,
    mistakes,
    pictures,
    run,
    searching,
    training,
)
from chainrule.cli.args import PROG
from chainrule.errors import ChainruleError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block too).

    A sub-command's parser is one too (argparse makes them of the main parser's class),
    so its errors point to the sub-command's own ``--help``.
    """

    commands: dict[str, argparse.ArgumentParser]  # the main parser's: name -> sub-command

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def flags(self) -> list[str]:
        """Every long option this parser knows (``--lr``, ``--optimizer`` ...)."""
        return [
            flag
            for action in self._actions
            for flag in action.option_strings
            if flag.startswith("--")
        ]


def closest_flag(flag: str, known: list[str]) -> str | None:
    """The known flag a mistyped ``flag`` most likely meant, or None.

    By spelling (``--optimiser``, ``--batch_size``), else by initials, since the short
    flags abbreviate words a user may spell out (``--learning-rate`` for ``--lr``).
    """
    typed = flag.split("=", 1)[0].replace("_", "-").lower()
    close = difflib.get_close_matches(typed, known, n=1)
    if close:
        return close[0]
    words = typed.lstrip("-").split("-")
    initials = "--" + "".join(word[:1] for word in words)
    return initials if len(words) > 1 and initials in known else None


def unrecognized(extras: list[str], parser: _Parser) -> str:
    """argparse's 'unrecognized arguments' message, with the flag each mistyped one meant."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    for extra in extras:
        meant = closest_flag(extra, parser.flags()) if extra.startswith("--") else None
        if meant is not None:
            message += f"; did you mean {meant} (not {extra.split('=', 1)[0]})?"
    return message


def _refuse_unknown_command(argv: list[str], parser: _Parser) -> None:
    """A usage error for a mistyped sub-command, with the one it most likely meant
    (``trian``: did you mean train?), as a mistyped flag gets."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is None or command in parser.commands:
        return
    close = difflib.get_close_matches(command, list(parser.commands), n=1)
    hint = f"did you mean {close[0]}?" if close else f"choose one of {', '.join(parser.commands)}"
    parser.error(f"unknown command {command!r}; {hint}")


def one_line(message: str) -> str:
    """A multi-line message (a list of places looked in, say) folded onto one line."""
    lines = [line.strip().removeprefix("- ") for line in message.splitlines()]
    return "; ".join(line.rstrip(".;:") for line in lines if line) + "."


def build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Backpropagation through a computational graph of layers, "
        "as chapter 5 of 'Deep Learning from Scratch' teaches it.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (for bug reports)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    gradchecking.add_parser(commands)
    training.add_parser(commands)
    evaluating.add_parser(commands)
    pictures.add_parsers(commands)
    searching.add_parser(commands)
    fetching.add_parser(commands)
    run.add_parser(commands)
    convert.add_parser(commands)
    mistakes.add_parser(commands)

    bench = commands.add_parser(
        "bench",
        help="time training steps against PyTorch and NumPy (bench/bench_train.py)",
        description=f"Run {BENCH_SCRIPT.name} of a source checkout with these arguments "
        "(its own --help lists them).",
        add_help=False,
    )
    bench.add_argument("arguments", nargs=argparse.REMAINDER)  # for --help; main() runs it
    parser.commands = commands.choices  # name -> the sub-command's parser
    return parser


# The benchmark is a tool beside the library, not part of it: it lives in the checkout.
BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_train.py"


def _run_benchmark(arguments: list[str]) -> int:
    if not BENCH_SCRIPT.is_file():
        raise FileNotFoundError(
            "chainrule bench runs bench/bench_train.py of a source checkout, and there is "
            f"none beside this installation ({BENCH_SCRIPT.parents[1]}): run it from a clone"
        )
    script = runpy.run_path(str(BENCH_SCRIPT))
    return script["main"](arguments, prog=f"{PROG} bench", parser_class=_Parser)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _refuse_unknown_command(argv, parser)
    if argv[:1] == ["bench"]:
        # Every argument after "bench" is the script's (argparse would claim its options).
        args = argparse.Namespace(command="bench", debug=False)
        args.run = lambda args, parser: _run_benchmark(argv[1:])
        command_parser = parser.commands["bench"]
    else:
        # parse_known_args, not parse_args: argparse reports a sub-command's unknown flags
        # from the main parser, which knows neither the sub-command nor its flags.
        args, extras = parser.parse_known_args(argv)
        command_parser = parser.commands.get(args.command, parser)
        if extras:
            command_parser.error(unrecognized(extras, command_parser))
    if args.command is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("CHAINRULE_DEBUG", "") not in ("", "0")
    try:
        return args.run(args, command_parser)
    except (ChainruleError, OSError, ValueError) as error:
        if debug:
            raise
        message = one_line(str(error))
        if getattr(error, "__notes__", None):  # a long detail, kept off the one line
            message = message.removesuffix(".") + "; --debug shows the details."
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
