"""``chainrule graph``, ``explain`` and ``show-weights``: pictures and traces."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.args import (
    PROG,
    add_network_arguments,
    hidden_sizes,
    output_path,
    positive_int,
    suffixes,
)

# The network examples' options when not given. Their parser default is None, so that
# one given for an example it does not apply to can be refused rather than ignored.
NETWORK_DEFAULTS = {"activation": "relu", "samples": 2, "seed": 0}
NETWORK_FLAGS = ("hidden", "layers", "activation", "samples", "seed")


def _refuse_flags_that_do_not_apply(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> None:
    """A usage error for a network flag given to an example it would change nothing in."""
    from chainrule.examples import EXAMPLES

    given = [f"--{name}" for name in NETWORK_FLAGS if getattr(args, name) is not None]
    if args.name in EXAMPLES and given:
        kind = "a shopping example" if args.name.startswith("apple") else "a book's figure"
        parser.error(
            f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to "
            f"{args.name}, {kind} without a network; the network flags apply "
            "to two-layer-net and multi-layer-net"
        )
    convnet_given = [
        f"--{name}" for name in ("hidden", "layers", "activation") if getattr(args, name)
    ]
    if args.name == "convnet" and convnet_given:
        parser.error(
            f"{', '.join(convnet_given)} {'does' if len(convnet_given) == 1 else 'do'} not "
            "apply to convnet, the book's SimpleConvNet; --samples and --seed do"
        )
    if args.name == "two-layer-net" and args.activation not in (None, "relu"):
        parser.error(
            f"--activation {args.activation} does not apply to two-layer-net, the book's "
            "TwoLayerNet with ReLU; use multi-layer-net"
        )


def _example_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """example_graph's options from --hidden/--layers/--activation/--samples/--seed."""
    _refuse_flags_that_do_not_apply(args, parser)
    for name, default in NETWORK_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    options = {"activation": args.activation, "samples": args.samples, "seed": args.seed}
    if args.hidden is not None or args.layers is not None:
        args.hidden = args.hidden or [50]  # --layers K alone: K layers of the default size
        options["hidden"] = hidden_sizes(args, parser)
    if args.name == "two-layer-net" and len(options.get("hidden", [50])) != 1:
        parser.error("two-layer-net has one hidden layer: give one --hidden size")
    return options


def _note_missing_hangul(args: argparse.Namespace) -> None:
    """On stderr, what a Korean picture lacks to show its Hangul (a font, a renderer)."""
    from chainrule.viz.graph import hangul_problem

    problem = hangul_problem() if args.lang == "ko" and args.output is not None else None
    if problem is not None:
        print(f"{PROG}: note: {problem}", file=sys.stderr)


def cmd_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.explain import example_graph, example_title
    from chainrule.viz.graph import render, to_dot

    options = _example_options(args, parser)
    graph = example_graph(args.name, **options)
    title = args.title or example_title(
        args.name, hidden=options.get("hidden"), samples=args.samples, lang=args.lang
    )
    _note_missing_hangul(args)
    if args.output is not None and args.output.lower().endswith(".html"):
        from chainrule.viz.page import write_page

        print(f"wrote {write_page(graph, args.output, title=title, lang=args.lang)}")
        return 0
    dot = to_dot(graph, show_grad=not args.no_grad, title=title, lang=args.lang)
    if args.output is None:
        print(dot, end="")
    else:
        print(f"wrote {render(dot, args.output)}")
    return 0


def cmd_explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.explain import explain_example

    options = _example_options(args, parser)
    print(explain_example(args.name, color=args.color, lang=args.lang, **options), end="")
    return 0


def _initial_filters(checkpoint, path: str):
    """The first-layer filters the checkpoint's run started from: its network rebuilt
    from the same description, seed and initial scale."""
    from chainrule.networks import SimpleConvNet

    network, run = checkpoint.meta.get("network", {}), checkpoint.meta.get("train", {})
    if network.get("network") != "SimpleConvNet" or "seed" not in run or "init" not in run:
        raise ValueError(
            f"{path}: --before needs a convnet checkpoint written by 'chainrule train "
            "--model convnet' (its seed and initial scale rebuild the starting filters)"
        )
    initial = SimpleConvNet(
        tuple(network["input_dim"]),
        network["conv_param"],
        network["hidden_size"],
        network["output_size"],
        run["init"],
        dtype=network.get("dtype", "float64"),
        seed=run["seed"],
    )
    return initial.params["W1"]


def cmd_show_weights(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.checkpoint import load_checkpoint
    from chainrule.viz.weights import plot_filters, plot_weights

    checkpoint = load_checkpoint(args.checkpoint)
    if "W1" not in checkpoint.params:
        raise ValueError(f"{args.checkpoint}: no first-layer weights W1 in this checkpoint")
    W1 = checkpoint.params["W1"]
    shape = "×".join(map(str, W1.shape))
    if W1.ndim == 4:
        title = f"first-layer filters W1 ({shape}) of {args.checkpoint}, step {checkpoint.step}"
        before = _initial_filters(checkpoint, args.checkpoint) if args.before else None
        print(f"wrote {plot_filters(W1, args.output, title=title, before=before)}")
        return 0
    if args.before:
        parser.error("--before draws a convnet's filters; this checkpoint has W1 " + shape)
    title = f"first-layer weights W1 ({shape}) of {args.checkpoint}, step {checkpoint.step}"
    print(f"wrote {plot_weights(W1, args.output, title=title)}")
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from chainrule.explain import EXAMPLE_NAMES
    from chainrule.messages import LANGUAGES
    from chainrule.viz.graph import FORMATS as GRAPH_FORMATS
    from chainrule.viz.weights import FORMATS as WEIGHTS_FORMATS

    graph_help = "draw a worked example's graph: values above the arrows, gradients below"
    explain_help = "trace a worked example's forward and backward pass node by node, with numbers"
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
        add_network_arguments(
            sub, None, "hidden sizes of the network examples (default: 50; 50 50)"
        )
        sub.add_argument(
            "--samples",
            type=positive_int,
            help="MNIST digits in the networks' batch (default: 2)",
        )
        sub.set_defaults(run=run, **dict.fromkeys(NETWORK_DEFAULTS))
        sub.add_argument(
            "--lang",
            choices=LANGUAGES,
            default="en",
            help="the words in English (default) or Korean (ko: 순전파, 역전파, 연쇄법칙 …)",
        )
        if command == "graph":
            sub.add_argument(
                "-o",
                "--output",
                type=output_path((*GRAPH_FORMATS, "html")),
                metavar="PATH",
                help=f"write {suffixes((*GRAPH_FORMATS, 'html'))} (default: print the DOT "
                "text); .html is a page to explore in a browser: change an input, step "
                "through the backward pass",
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
        help="draw a checkpoint's first-layer weights as 28×28 images, or a convnet's filters",
        description="Draw the first layer's weights W1 of a checkpoint, one image per hidden "
        "unit; of a convnet checkpoint, one grey image per filter (the book's Figure 7-24), "
        "with --before the initial filters beside the trained ones.",
    )
    show_weights.add_argument(
        "--before",
        action="store_true",
        help="convnet: draw the filters the run started from (same seed) beside the trained",
    )
    show_weights.add_argument("checkpoint", metavar="CHECKPOINT")
    show_weights.add_argument(
        "-o",
        "--output",
        type=output_path(WEIGHTS_FORMATS, drawn_by="matplotlib"),
        metavar="PATH",
        required=True,
        help=f"the picture to write ({suffixes(WEIGHTS_FORMATS)})",
    )
    show_weights.set_defaults(run=cmd_show_weights)
