"""The ``chainrule`` command line: the only module that parses arguments, prints and exits.

Exit status: 0 success, 1 a failure (a failed check, bad data, a diverged run),
2 a usage error. A user's mistake prints one line on stderr, never a traceback;
``--debug`` (or ``CHAINRULE_DEBUG=1``) shows the traceback for bug reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

from chainrule import __version__
from chainrule.errors import ChainruleError

PROG = "chainrule"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _hidden_sizes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[int]:
    """``--hidden`` sizes, repeated to ``--layers`` hidden layers when one size is given."""
    hidden = list(args.hidden)
    if args.layers is not None:
        if len(hidden) == 1:
            hidden *= args.layers
        elif len(hidden) != args.layers:
            parser.error(f"--layers {args.layers} does not match {len(hidden)} --hidden sizes")
    return hidden


def _add_network_arguments(parser: argparse.ArgumentParser, hidden_default: int = 50) -> None:
    parser.add_argument(
        "--hidden",
        type=positive_int,
        nargs="+",
        default=[hidden_default],
        metavar="SIZE",
        help=f"hidden layer sizes, one or more (default: {hidden_default})",
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


def _build_network(
    args: argparse.Namespace,
    hidden: list[int],
    dtype: str,
    input_size: int = 784,
    output_size: int = 10,
    weight_decay: float = 0.0,
    init: str | None = None,
):
    from chainrule.networks import MultiLayerNet, TwoLayerNet

    if len(hidden) == 1 and args.activation == "relu" and init is None and not weight_decay:
        return TwoLayerNet(input_size, hidden[0], output_size, dtype=dtype, seed=args.seed)
    return MultiLayerNet(
        input_size,
        hidden,
        output_size,
        activation=args.activation,
        weight_init_std=init or args.activation,
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
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
