"""``chainrule gradcheck``: backprop against central differences, parameter by parameter."""

from __future__ import annotations

import argparse

import numpy as np

from chainrule.cli.args import (
    add_network_arguments,
    build_network,
    hidden_sizes,
    positive_float,
    positive_int,
)


def cmd_gradcheck(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.gradcheck import check_gradients

    hidden = hidden_sizes(args, parser)
    net = build_network(hidden, activation=args.activation, dtype="float64", seed=args.seed)
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    gradcheck = commands.add_parser(
        "gradcheck",
        help="compare backprop gradients with central differences",
        description="Build the book's TwoLayerNet (or a MultiLayerNet) in float64 on random data "
        "of MNIST shape and compare every parameter's backprop gradient with central differences.",
    )
    add_network_arguments(gradcheck)
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
