"""Training speed on a shared machine: alone, beside a busy process, and two runs at once.

A tool, run by hand from a checkout (PyTorch optional)::

    python bench/bench_shared.py                     # workloads a, b, c; a Markdown table
    python bench/bench_shared.py --workloads a --pairs 5 --seconds 6 --json shared.json

Users' machines are rarely idle: a second training run, a notebook, a compiler share the
cores. For each training loop of ``bench_train.py`` named with ``--loops`` (chainrule's
``fit``, whose step chooses by timing how many threads share its products; the same with
that count pinned at BLAS's own thread count, ``fit(threads=N)``; PyTorch with its default
threads), each scenario runs the loop in fresh worker processes for ``--seconds`` and
takes the median step time after a warm-up:

- ``alone``: one worker, nothing else running (the reference);
- ``busy``: one worker beside a process that keeps one core busy (a pure-Python loop);
- ``pair``: two workers of the same loop started together, ``--pairs`` times.

It reports each scenario's median step time divided by the same loop's ``alone`` time
(for pairs, the worst worker of the worst pair). Workers of different loops never run
together, and the scenarios of all loops are interleaved, so a drift of the host's load
touches them alike.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(HERE))

from bench_train import _cpu_model as cpu_model  # noqa: E402

WARM_UP_S = 0.5  # not timed: the first steps, the tuner's first trial
LOOPS = ("chainrule fit", "chainrule fit (threads pinned)", "PyTorch")


# --------------------------------------------------------------------------------------
# The worker: one training loop for a while, its step times as JSON on stdout


def work(loop: str, workload: str, seconds: float, start_at: float) -> dict[str, Any]:
    import bench_train

    w = bench_train.WORKLOADS[workload]
    rng = np.random.default_rng(bench_train.SEED)
    data = bench_train.make_data(w, bench_train.TRAIN_SIZE // w.batch - 1, rng)
    from chainrule import MultiLayerNet

    params = MultiLayerNet(w.sizes[0], list(w.sizes[1:-1]), w.sizes[-1], seed=0).params
    if loop == "chainrule fit (threads pinned)":
        run = pinned_fit(params, w, data, bench_train)
    else:
        run = bench_train.LOOPS[loop](params, w, data)
    time.sleep(max(0.0, start_at - time.time()))  # both workers of a pair start together
    began = time.perf_counter()
    stamps: list[float] = []
    while time.perf_counter() - began < seconds:
        stamps += run(len(data.batches))[0]
    steps = np.diff([s for s in stamps if s - began >= WARM_UP_S])
    return {"median_step_s": float(np.median(steps)), "steps": len(steps)}


def pinned_fit(params: dict, w: Any, data: Any, bench_train: Any) -> Any:
    """chainrule's fit with the step's thread count pinned at BLAS's own thread count."""
    from chainrule.blas import blas_controllers
    from chainrule.optim import SGD
    from chainrule.train import fit

    threads = max((lib.num_threads for lib in blas_controllers()), default=1)
    net, optimizer = bench_train._chainrule_net(params, w), SGD(bench_train.LR)
    return bench_train.fit_loop(fit, net, optimizer, w, data, threads=threads)


# --------------------------------------------------------------------------------------
# The scenarios


def start_worker(loop: str, workload: str, seconds: float, start_at: float) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", loop, "--workloads", workload]
    command += ["--seconds", str(seconds), "--start-at", str(start_at)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish(worker: subprocess.Popen) -> float:
    out, _ = worker.communicate()
    if worker.returncode != 0:
        raise RuntimeError(f"a worker failed (exit status {worker.returncode})")
    return json.loads(out)["median_step_s"]


def scenario(kind: str, loop: str, workload: str, seconds: float) -> list[float]:
    """The median step times of the workers of one scenario."""
    start_at = time.time() + 3.0  # time to import and make the data
    count = 2 if kind == "pair" else 1
    workers = [start_worker(loop, workload, seconds, start_at) for _ in range(count)]
    neighbour = None
    if kind == "busy":
        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return [finish(worker) for worker in workers]
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def measure(loops: list[str], workload: str, pairs: int, seconds: float) -> dict[str, Any]:
    times: dict[str, dict[str, list[Any]]] = {
        loop: {"alone": [], "busy": [], "pair": []} for loop in loops
    }
    plan = ["alone", "busy"] + ["pair", "alone"] * pairs  # alone again between pairs
    for kind in plan:
        for loop in loops:
            result = scenario(kind, loop, workload, seconds)
            times[loop][kind].append(result if kind == "pair" else result[0])
            print(f"  {workload} {loop} {kind}: {result}", file=sys.stderr)
            time.sleep(1.0)
    return times


def ratios(times: dict[str, list[Any]]) -> dict[str, float]:
    alone = statistics.median(times["alone"])
    return {
        "alone_ms": alone * 1e3,
        "busy": times["busy"][0] / alone,
        "pair_worst": max(max(pair) for pair in times["pair"]) / alone,
        "pair_median": statistics.median(t for pair in times["pair"] for t in pair) / alone,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="abc", help="any of a, b, c (default: abc)")
    parser.add_argument("--loops", default=",".join(LOOPS), help="comma-separated loop names")
    parser.add_argument("--pairs", type=int, default=3, help="pairs per loop (default 3)")
    parser.add_argument("--seconds", type=float, default=4.0, help="each worker's run time")
    parser.add_argument("--json", metavar="PATH", help="also write every timing as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(work(args.worker, args.workloads, args.seconds, args.start_at)))
        return 0
    loops = [loop.strip() for loop in args.loops.split(",")]
    if "PyTorch" in loops:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not installed: its loop is left out", file=sys.stderr)
            loops.remove("PyTorch")
    report: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "workloads": {}}
    lines = [
        f"{cpu_model()}, {os.cpu_count()} cores; each worker {args.seconds:g} s, median step "
        f"after {WARM_UP_S:g} s; {args.pairs} pairs per loop. Step time ÷ the same loop alone:",
        "",
        "| workload | loop | alone ms/step | beside a busy process | two at once, worst (median) |",
        "|---|---|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for workload in args.workloads:  # each workload's rows as soon as they are measured
        times = measure(loops, workload, args.pairs, args.seconds)
        report["workloads"][workload] = times
        for loop in loops:
            r = ratios(times[loop])
            print(
                f"| ({workload}) | {loop} | {r['alone_ms']:.3f} | {r['busy']:.2f}× | "
                f"{r['pair_worst']:.2f}× ({r['pair_median']:.2f}×) |",
                flush=True,
            )
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
