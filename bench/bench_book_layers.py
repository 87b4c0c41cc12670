"""The book's own networks on chainrule's layers, against the same networks on the book's.

A tool, run by hand from a checkout, not in CI::

    python bench/bench_book_layers.py                  # both networks, a Markdown table
    python bench/bench_book_layers.py --networks simple --rounds 7 --json book.json
    python bench/bench_book_layers.py --blas-threads 1 # both sides on one BLAS thread

The book's chapter 7 ``SimpleConvNet`` and chapter 8 ``DeepConvNet`` classes (from
``tests/book_checkout``, the book-shaped reference tree that computes as the book's files
do, with its ``common/layers.py`` and ``common/util.py``)
run unchanged on two sets of layers: the book's own, and chainrule's, put in place of
``common.layers`` in ``sys.modules`` before the network's file is imported, which is how
``chainrule run`` runs the book's scripts. A step is the book's ``grads =
net.gradient(x, t)`` then ``Adam.update(net.params, grads)`` (chainrule's Adam on both
sides, so the difference is the layers'), float64 as the book computes, on batches of the
embedded mnist-5k's digits (whose blank backgrounds give pooling windows of tied maxima).

Each side runs in its own process (threads that one library leaves spinning would slow
the next), the sides alternate over ``--rounds`` rounds, which side goes first changing
each round; a process reports the median of its timed steps after a warm-up, in wall
time and in CPU time (the process's, all its threads), and the table gives the medians
over rounds and the ratios book ÷ chainrule (> 1: chainrule's layers are faster). On a
machine that other work shares, the CPU time is the steadier figure (a step that waits
for a core is not charged for the wait), and ``--blas-threads 1`` keeps BLAS threads
from spinning while they wait for each other.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "tests" / "book_checkout"
SIDES = ("book", "chainrule")
# network: (its folder in the book's repository, module, class, batch, timed steps)
NETWORKS = {
    "simple": ("ch07", "simple_convnet", "SimpleConvNet", 100, 10),
    "deep": ("ch08", "deep_convnet", "DeepConvNet", 100, 3),
}
SEED = 0
WARM_UP_STEPS = 1


def book_network_class(side: str, network: str) -> type:
    """The book's network class, importing its file with ``side``'s layers as
    ``common.layers``."""
    folder, module, name = NETWORKS[network][:3]
    sys.path[:0] = [str(REFERENCE), str(REFERENCE / folder)]
    if side == "chainrule":
        import chainrule.layers

        sys.modules["common.layers"] = chainrule.layers
    return getattr(importlib.import_module(module), name)


def batches(batch_size: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` batches of mnist-5k's training digits, (N, 1, 28, 28) float64, and labels."""
    from chainrule.data import load_mnist

    (x, t), _ = load_mnist(flatten=False)
    order = np.random.default_rng(SEED).permutation(len(x))
    picks = [order[i * batch_size : (i + 1) * batch_size] for i in range(count)]
    return [(x[idx].astype(np.float64), t[idx]) for idx in picks]


def work(side: str, network: str, steps: int) -> dict[str, Any]:
    """One process's run: the step times of ``network`` on ``side``'s layers."""
    from chainrule.optim import Adam

    cls = book_network_class(side, network)
    np.random.seed(SEED)  # noqa: NPY002 (the book's networks draw weights and masks from it)
    net = cls()
    optimizer = Adam()
    wall, cpu, losses = [], [], []
    for x, t in batches(NETWORKS[network][3], WARM_UP_STEPS + steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        grads = net.gradient(x, t)
        optimizer.update(net.params, grads)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        losses.append(float(net.last_layer.loss))
    return {
        "wall_s": statistics.median(wall[WARM_UP_STEPS:]),
        "cpu_s": statistics.median(cpu[WARM_UP_STEPS:]),
        "losses": losses,
    }


def run_worker(side: str, network: str, steps: int, blas_threads: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    if blas_threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(blas_threads)
    done = subprocess.run(
        [sys.executable, __file__, "--worker", side, network, str(steps)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout)


def bench(
    networks: list[str], rounds: int, steps: int | None, blas_threads: int | None
) -> dict[str, Any]:
    """Per network and side, each round's process medians, their medians and the ratios."""
    results: dict[str, Any] = {}
    for network in networks:
        rounds_of = {side: {"wall_s": [], "cpu_s": []} for side in SIDES}
        losses: dict[str, list[float]] = {}
        for r in range(rounds):
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                out = run_worker(side, network, steps or NETWORKS[network][4], blas_threads)
                for clock in ("wall_s", "cpu_s"):
                    rounds_of[side][clock].append(out[clock])
                losses[side] = out["losses"]
        medians = {
            side: {clock: statistics.median(v) for clock, v in rounds_of[side].items()}
            for side in SIDES
        }
        results[network] = {
            "rounds": rounds_of,
            "median": medians,
            "book_over_chainrule": {
                clock: medians["book"][clock] / medians["chainrule"][clock]
                for clock in ("wall_s", "cpu_s")
            },
            "losses": losses,
        }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| network (batch 100, float64) | book's layers s/step | chainrule's layers s/step "
        "| book ÷ chainrule |",
        "|---|---:|---:|---:|",
    ]
    for network, r in results.items():
        name = NETWORKS[network][2]
        cells = [
            " / ".join(f"{r['median'][side][clock]:.4f}" for clock in ("wall_s", "cpu_s"))
            for side in SIDES
        ]
        ratio = " / ".join(f"{r['book_over_chainrule'][c]:.2f}×" for c in ("wall_s", "cpu_s"))
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ratio} |")
    return (
        "\n".join(lines) + "\n(wall / CPU: each the median over rounds of a process's median step)"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        side, network, steps = argv[1:4]
        print(json.dumps(work(side, network, int(steps))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="timed steps per process")
    parser.add_argument("--blas-threads", type=int, help="BLAS threads of both sides")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from bench_train import _cpu_model

    results = bench(args.networks, args.rounds, args.steps, args.blas_threads)
    threads = args.blas_threads or "the library's default"
    print(
        f"CPU: {_cpu_model()}, {os.cpu_count()} cores; NumPy {np.__version__}; "
        f"BLAS threads: {threads}; medians of {args.rounds} rounds"
    )
    print(table(results))
    if args.json:
        info = {"cpu": _cpu_model(), "blas_threads": args.blas_threads, "results": results}
        args.json.write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
