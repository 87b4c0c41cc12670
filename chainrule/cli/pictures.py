"""``chainrule graph``, ``explain`` and ``show-weights``: pictures and traces."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from chainrule.cli.args import (
    PROG,
    add_network_arguments,
    hidden_sizes,
    output_path,
    positive_int,
    suffixes,
)
from chainrule.errors import CheckpointError

# The network examples' options when not given. Their parser default is None, so that
# one given for an example it does not apply to can be refused rather than ignored.
NETWORK_DEFAULTS = {"activation": "relu", "samples": 2, "seed": 0}
NETWORK_FLAGS = ("hidden", "layers", "activation", "samples", "seed")
# A picture or trace of a network is for looking at: these bound what it may allocate
# (a --hidden of 10**8 asked for gigabytes before failing).
MAX_HIDDEN_UNITS = 10_000
MAX_HIDDEN_LAYERS = 20
MAX_SAMPLES = 1_000


def input_flag(name: str) -> str:
    """The flag that sets an example's input ``name``: ``--apple-count`` for "apple count"."""
    return "--" + name.replace(" ", "-")


def _example_input_flags() -> dict[str, tuple[str, list[str], Any]]:
    """flag -> (input name, the examples that have it, its default), over every example."""
    from chainrule.examples import EXAMPLES, example_inputs

    flags: dict[str, tuple[str, list[str], Any]] = {}
    for example in EXAMPLES:
        for name, default in example_inputs(example).items():
            flags.setdefault(input_flag(name), (name, [], default))[1].append(example)
    return flags


def _array_text(x: Any) -> str:
    """An array as its flag takes it: ``1,2;3,4`` (rows split by ';')."""
    from chainrule.formatting import format_number

    rows = np.atleast_2d(np.asarray(x))
    text = ";".join(",".join(format_number(v) for v in row) for row in rows)
    return text


def _parse_input(flag: str, text: str, default: Any, parser: argparse.ArgumentParser) -> Any:
    """The value of an example's input flag, shaped as its default; else a usage error."""
    from chainrule.formatting import format_shape

    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
        value = np.array(rows, dtype=np.float64)
    except ValueError:
        value = None
    if value is not None and np.ndim(default) < 2:
        value = value.reshape(-1)
    if value is not None and np.ndim(default) == 0 and value.size == 1:
        value = float(value[0])
    if value is None or np.shape(value) != np.shape(default) or not np.all(np.isfinite(value)):
        if np.ndim(default) == 0:
            parser.error(f"{flag} takes a finite number, got {text!r}")
        parser.error(
            f"{flag} takes a {format_shape(np.shape(default))} array of finite numbers, "
            f"rows split by ';' (as {_array_text(default)}), got {text!r}"
        )
    return value


def _changed_inputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The example's inputs given by their flags (``--apple 120``), checked."""
    from chainrule.examples import EXAMPLES, example_inputs

    given = {
        flag: text for flag, text in vars(args).get("input_flags", {}).items() if text is not None
    }
    if not given:
        return {}
    if args.name not in EXAMPLES:
        parser.error(
            f"{', '.join(given)}: {args.name} has no inputs to set, it reads MNIST digits "
            "(--samples, --seed choose them)"
        )
    known = example_inputs(args.name)
    inputs = {}
    for flag, text in given.items():
        name = next((key for key in known if input_flag(key) == flag), None)
        if name is None:
            mine = ", ".join(input_flag(key) for key in known)
            parser.error(f"{flag} does not apply to {args.name}; its inputs are {mine}")
        inputs[name] = _parse_input(flag, text, known[name], parser)
    return inputs


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
    if args.samples > MAX_SAMPLES:
        parser.error(f"--samples {args.samples} is too many for a picture: at most {MAX_SAMPLES}")
    if args.layers is not None and args.layers > MAX_HIDDEN_LAYERS:
        parser.error(f"--layers {args.layers} is too many: at most {MAX_HIDDEN_LAYERS}")
    if args.hidden is not None or args.layers is not None:
        args.hidden = args.hidden or [50]  # --layers K alone: K layers of the default size
        options["hidden"] = hidden_sizes(args, parser)
        too_large = [size for size in options["hidden"] if size > MAX_HIDDEN_UNITS]
        if too_large or len(options["hidden"]) > MAX_HIDDEN_LAYERS:
            what = f"--hidden {too_large[0]}" if too_large else f"{len(options['hidden'])} layers"
            parser.error(
                f"{what} is too large for a picture of the network: at most "
                f"{MAX_HIDDEN_UNITS} units a layer, {MAX_HIDDEN_LAYERS} layers"
            )
    if args.name == "two-layer-net" and len(options.get("hidden", [50])) != 1:
        parser.error("two-layer-net has one hidden layer: give one --hidden size")
    return options


def _note_missing_hangul(args: argparse.Namespace) -> None:
    """On stderr, what a Korean picture lacks to show its Hangul (a font, a renderer)."""
    from chainrule.viz.diagram import hangul_problem

    problem = hangul_problem() if args.lang == "ko" and args.output is not None else None
    if problem is not None:
        print(f"{PROG}: note: {problem}", file=sys.stderr)


def cmd_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.explain import example_graph, example_title
    from chainrule.viz.diagram import render, to_dot

    options = _example_options(args, parser)
    inputs = _changed_inputs(args, parser)
    graph = example_graph(args.name, inputs=inputs, lang=args.lang, **options)
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
    inputs = _changed_inputs(args, parser)
    trace = explain_example(args.name, color=args.color, lang=args.lang, inputs=inputs, **options)
    print(trace, end="")
    return 0


def _initial_filters(checkpoint, path: str):
    """The first-layer filters the checkpoint's run started from: its network rebuilt
    from the same description, seed and initial scale."""
    from chainrule.networks import SimpleConvNet

    network, run = checkpoint.meta.get("network", {}), checkpoint.meta.get("train", {})
    if network.get("network") != "SimpleConvNet" or "seed" not in run or "init" not in run:
        raise CheckpointError(
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
        raise CheckpointError(f"{args.checkpoint}: no first-layer weights W1 in this checkpoint")
    W1 = checkpoint.params["W1"]
    shape = "×".join(map(str, W1.shape))
    shown = _display_path(args.checkpoint)
    if W1.ndim == 4:
        title = f"first-layer filters W1 ({shape}) of {shown}, step {checkpoint.step}"
        before = _initial_filters(checkpoint, args.checkpoint) if args.before else None
        print(f"wrote {plot_filters(W1, args.output, title=title, before=before)}")
        return 0
    if args.before:
        parser.error("--before draws a convnet's filters; this checkpoint has W1 " + shape)
    title = f"first-layer weights W1 ({shape}) of {shown}, step {checkpoint.step}"
    print(f"wrote {plot_weights(W1, args.output, title=title)}")
    return 0


class _InputFlag(argparse.Action):
    """Keeps an example input's text under its flag, in ``args.input_flags``."""

    def __call__(self, parser, namespace, values, option_string=None):
        flags = dict(getattr(namespace, "input_flags", None) or {})
        flags[self.option_strings[0]] = values
        namespace.input_flags = flags


def _add_input_flags(sub: argparse.ArgumentParser) -> None:
    """A flag for each named input of the book's examples: ``--apple``, ``--x``, ``--W``."""
    from chainrule.formatting import format_shape

    group = sub.add_argument_group(
        "inputs of the book's examples",
        "change an input as the page can: explain apple --apple 120, explain sigmoid --x 2",
    )
    for flag, (name, examples, default) in _example_input_flags().items():
        if np.ndim(default) == 0:
            metavar, shown = "NUMBER", _array_text(default)
        else:
            metavar = "ROWS" if np.ndim(default) == 2 else "VALUES"
            shown = f"{format_shape(np.shape(default))}, {_array_text(default)}"
        group.add_argument(
            flag,
            action=_InputFlag,
            dest=f"input {name}",
            metavar=metavar,
            help=f"{', '.join(examples)}: {name} (default {shown})",
        )
    sub.set_defaults(input_flags={})


def _display_path(path: str) -> str:
    """A path as a title can show it: bytes that are not UTF-8 (kept by Python as lone
    surrogates, which cannot be encoded) written as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from chainrule.explain import EXAMPLE_NAMES
    from chainrule.messages import LANGUAGES
    from chainrule.viz.diagram import FORMATS as GRAPH_FORMATS
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
        _add_input_flags(sub)
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
