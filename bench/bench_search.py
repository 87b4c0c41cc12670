"""The speed-up of ``chainrule search --jobs N`` over ``--jobs 1``: the same search, timed
end to end as a user runs it.

Run by hand, not in CI::

    python bench/bench_search.py [--jobs 2] [--trials 20] [--epochs 50] [--repeats 3]

Each run is a fresh ``chainrule search`` process with its own results file, so nothing is
resumed: ``--jobs 1`` trains the trials one after another in its own process, ``--jobs N``
starts a Dask LocalCluster of N single-threaded worker processes (each trial on one BLAS
thread), sends it the data and collects the records. The wall time covers everything:
starting Python, loading the data, starting and closing the cluster. The runs alternate
(1, N, N, 1, ...) so that a change in the machine's load falls on both, and each waits for
the CPUs to be idle (on a shared machine), and the CPU time other processes took during
each run is reported beside it; the speed-up is the ratio of the medians. The
search is the book's network (six hidden layers of 100, SGD, batch 100, 50 epochs) on
mnist-5k; every run must give the same validation accuracy for each trial, whatever the
number of jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import _cpu_model as cpu_model


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_idle(seconds: float) -> float:
    """The share of the machine's CPU time that was idle over the next ``seconds``."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, all

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_idle(share: float, patience: float) -> float:
    """Wait (at most ``patience`` seconds) until the CPUs were ``share`` idle over 2 s;
    return the last idle share measured. On a shared machine this starts each run on a
    quiet stretch, when there is one; without /proc it returns 1 at once."""
    if not os.path.exists("/proc/stat"):
        return 1.0
    deadline = time.monotonic() + patience
    while True:
        idle = cpu_idle(2.0)
        if idle >= share or time.monotonic() > deadline:
            return idle


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all CPUs), or 0."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def run_search(jobs: int, options: list[str], results: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "chainrule", "search", "--quiet", "--jobs", str(jobs)]
    busy, ours = machine_busy_seconds(), os.times()
    start = time.perf_counter()
    done = subprocess.run(
        [*command, *options, "--results", str(results)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    after = os.times()
    # The search and its worker processes (waited for, so counted as our children).
    used = after.children_user + after.children_system - ours.children_user - ours.children_system
    others = max(0.0, machine_busy_seconds() - busy - used) / seconds
    if done.returncode != 0:
        raise SystemExit(f"chainrule search --jobs {jobs} failed: {done.stderr.strip()}")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    return {
        "jobs": jobs,
        "seconds": seconds,
        "cpu_seconds": used,
        "others_cores": others,
        "trial_seconds": sum(r["seconds"] for r in records),
        "val_accuracy": {r["trial"]: r["val_accuracy"] for r in records},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="against --jobs 1 (default: 2)")
    parser.add_argument("--trials", type=int, default=20, help="default: 20")
    parser.add_argument("--epochs", type=int, default=50, help="per trial (default: 50)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default: 3)")
    parser.add_argument(
        "--idle",
        type=float,
        default=0.9,
        help="before each run, wait until the CPUs were this share idle (default: 0.9)",
    )
    parser.add_argument(
        "--patience", type=float, default=120, help="seconds to wait for that (default: 120)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the runs as JSON")
    args = parser.parse_args(argv)
    options = ["--trials", str(args.trials), "--epochs", str(args.epochs)]
    runs: dict[int, list[dict[str, Any]]] = {1: [], args.jobs: []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            order = [1, args.jobs] if repeat % 2 == 0 else [args.jobs, 1]
            for jobs in order:
                results = Path(folder) / f"jobs{jobs}-run{repeat}.jsonl"
                idle = wait_for_idle(args.idle, args.patience)
                runs[jobs].append({**run_search(jobs, options, results), "idle_before": idle})
                run = runs[jobs][-1]
                print(
                    f"--jobs {jobs}: {run['seconds']:.1f} s (CPUs {idle:.0%} idle before; "
                    f"other processes used {run['others_cores']:.2f} cores meanwhile)",
                    file=sys.stderr,
                )
    reference = runs[1][0]["val_accuracy"]
    same = all(run["val_accuracy"] == reference for each in runs.values() for run in each)
    median = {jobs: statistics.median(r["seconds"] for r in each) for jobs, each in runs.items()}
    speedup = median[1] / median[args.jobs]
    machine = f"{cpu_model()}, {cores()} cores, Python {platform.python_version()}"
    print(
        f"chainrule search {' '.join(options)} (the book's network on mnist-5k), "
        f"median of {args.repeats} runs each, alternating; {machine}"
    )
    print()
    print(
        "| command | median wall time (s) | all runs (s) | trials per minute "
        "| seconds per trial (median) | cores used by other processes | speed-up |"
    )
    print("|---|---:|---|---:|---:|---|---:|")
    for jobs, each in runs.items():
        times = ", ".join(f"{r['seconds']:.1f}" for r in each)
        others = ", ".join(f"{r['others_cores']:.2f}" for r in each)
        per_trial = statistics.median(r["trial_seconds"] / args.trials for r in each)
        print(
            f"| `--jobs {jobs}` | {median[jobs]:.1f} | {times} | "
            f"{60 * args.trials / median[jobs]:.1f} | {per_trial:.2f} | {others} | "
            f"{median[1] / median[jobs]:.2f}× |"
        )
    print(
        f"\n--jobs {args.jobs} is {speedup:.2f}× as fast as --jobs 1; every run gave "
        + ("the same" if same else "DIFFERENT")
        + " validation accuracy for each trial"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "machine": machine, "options": options}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
