"""Old code against new, side by side in one process: did a change make training slower?

A tool, run by hand from a checkout::

    python bench/bench_ab.py --old 03e6b3a            # workloads a, b, c
    python bench/bench_ab.py --old HEAD~3 --workloads a --rounds 41

``--old`` names a git commit. Its ``chainrule`` package is copied out of git into a
temporary folder as ``chainrule_old`` (imports rewritten), so both versions load in this
process. Then ``bench_train.py``'s interleaved rounds run four loops on the same weights
and batches: ``fit`` and the book's loop (``net.gradient`` + ``optimizer.update``), each
with the old and the new code. It prints, per workload, the median over rounds of the
throughput ratio new ÷ old (above 1: the new code is faster), with quartiles.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_train  # noqa: E402


def load_old(ref: str, folder: Path) -> Any:
    """``chainrule`` as of git commit ``ref``, imported as the package ``chainrule_old``."""
    archive = subprocess.run(
        ["git", "archive", ref, "chainrule"], cwd=HERE.parent, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "chainrule").rename(folder / "chainrule_old")
    for path in (folder / "chainrule_old").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bchainrule\b(?=[.\s])", "chainrule_old", text), encoding="utf-8")
    sys.path.insert(0, str(folder))
    return importlib.import_module("chainrule_old")


def old_loops(old: Any) -> dict[str, Any]:
    """The old code's fit and book loop, as bench_train's loop factories."""
    networks = importlib.import_module("chainrule_old.networks")
    optim = importlib.import_module("chainrule_old.optim")
    train = importlib.import_module("chainrule_old.train")

    def net_of(params: dict, w: Any) -> Any:
        # float32 as bench_train's new-code network (the default became float64)
        sizes = (w.sizes[0], list(w.sizes[1:-1]), w.sizes[-1])
        net = networks.MultiLayerNet(*sizes, dtype=np.float32, seed=0)
        net.load_params(params)
        return net

    def old_fit(params: dict, w: Any, data: Any) -> Any:
        return bench_train.fit_loop(
            train.fit, net_of(params, w), optim.SGD(bench_train.LR), w, data
        )

    def old_book_loop(params: dict, w: Any, data: Any) -> Any:
        return bench_train._book_loop(net_of(params, w), optim.SGD(bench_train.LR), data)

    return {"old fit": old_fit, "old book loop": old_book_loop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="the git commit to compare against")
    parser.add_argument("--workloads", default="abc", help="any of a, b, c (default: abc)")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds between loops")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        old = load_old(args.old, Path(folder))
        bench_train.LOOPS.update(old_loops(old))
        pairs = {
            "fit": ("chainrule fit", "old fit"),
            "book loop": ("chainrule book loop", "old book loop"),
        }
        loops = [name for pair in pairs.values() for name in pair]
        print(
            f"{bench_train._cpu_model()}, {os.cpu_count()} cores; new = this checkout, old "
            f"= {args.old}; {args.rounds} interleaved rounds; throughput new ÷ old, median "
            "[quartiles]\n"
        )
        print("| workload | fit | book loop | new fit ms/step |")
        print("|---|---:|---:|---:|")
        for key in args.workloads:
            w = bench_train.WORKLOADS[key]
            result = bench_train.bench(w, loops, args.rounds, w.steps, args.settle)
            cells = []
            for new, before in pairs.values():
                ratios = [o / n for n, o in zip(result.seconds[new], result.seconds[before])]
                q1, q2, q3 = np.percentile(ratios, [25, 50, 75])
                cells.append(f"{q2:.3f} [{q1:.3f}–{q3:.3f}]")
            fit_ms = np.median(result.seconds["chainrule fit"]) * 1e3
            print(f"| {w.label} | {cells[0]} | {cells[1]} | {fit_ms:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
