"""Memory of training on full MNIST: the peak, and whether it grows over 10,000 steps.

Run by hand, not in CI::

    python bench/bench_memory.py --data-dir /tmp/mnist-full [--steps 10000] [--json out.json]
    python bench/bench_memory.py --model convnet --dataset mnist-5k --steps 2000

The budget checked: while training, the process's peak resident memory stays within the
float32 size of the dataset (train and test images and labels as loaded) plus 150 MB,
and memory does not grow from step to step.

How it is measured (Linux):

- Resident memory (RSS) from ``/proc/self/status``: ``VmRSS`` now and ``VmHWM``, the
  peak; the same of the child process that computes half of each large batch
  (:mod:`chainrule.engine.process`), and the proportional set size (PSS) of the two
  together, which counts the pages they share once. Writing ``5`` to
  ``/proc/self/clear_refs`` resets the peak, so the training phase's peak is measured
  apart from loading. ``resource.getrusage().ru_maxrss`` (the whole run's peak, never
  reset) is reported too.
- :mod:`tracemalloc` traces Python's and NumPy's allocations (NumPy reports its array
  data to it): the bytes in use and their peak, reset before training, so what training
  itself allocates is seen without the interpreter's and the BLAS library's own memory.
- Every ``--sample-every`` steps (from ``fit``'s ``on_step``) both are sampled. Growth is
  the difference between the sample after the first epoch (buffers, BLAS pools and the
  allocator have settled) and the last one; the loss history itself grows by a Python
  float per step (about 32 bytes), which is reported, not hidden.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from chainrule import MultiLayerNet
from chainrule.data.mnist import load_mnist
from chainrule.networks import DeepConvNet, SimpleConvNet
from chainrule.optim import SGD, Adam
from chainrule.train import LambdaCallback, fit, iters_per_epoch

MB = 1024 * 1024
BUDGET_OVER_DATASET = 150 * MB


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak) in bytes, from /proc/self/status; the children's (the
    engine's forked half of a batch) VmRSS and VmHWM summed, as ChildRSS and ChildHWM;
    and Pss, the proportional set size of this process and its children together (the
    pages a fork shares with its parent counted once, split between them)."""
    values = _status_fields(Path("/proc/self/status"), ("VmRSS", "VmHWM"))
    children = _children()
    values["ChildRSS"] = values["ChildHWM"] = 0
    for pid in children:
        child = _status_fields(Path(f"/proc/{pid}/status"), ("VmRSS", "VmHWM"))
        values["ChildRSS"] += child.get("VmRSS", 0)
        values["ChildHWM"] += child.get("VmHWM", 0)
    values["Pss"] = sum(
        _status_fields(Path(f"/proc/{pid}/smaps_rollup"), ("Pss",)).get("Pss", 0)
        for pid in ("self", *children)
    )
    return values


def _status_fields(path: Path, keys: tuple[str, ...]) -> dict[str, int]:
    """The fields ``keys`` (kB) of a /proc file, in bytes; none for a process gone."""
    values = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        key, _, rest = line.partition(":")
        if key in keys:
            values[key] = int(rest.split()[0]) * 1024
    return values


def _children() -> list[str]:
    """The pids of this process's children (the threads' lists together)."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += (task / "children").read_text().split()
    return pids


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="/tmp/mnist-full", help="the four MNIST IDX files")
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or mnist-5k")
    parser.add_argument(
        "--model",
        choices=("mlp", "convnet", "deepconvnet"),
        default="mlp",
        help="mlp: MultiLayerNet, SGD lr 0.1; convnet: the book's SimpleConvNet (float32), "
        "Adam lr 0.001, as train_convnet.py; deepconvnet: chapter 8's DeepConvNet, the same",
    )
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--hidden", default="50", help="hidden sizes, e.g. 50 or 1024,1024")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--json", metavar="PATH", help="also write the measurements as JSON")
    args = parser.parse_args(argv)
    hidden = [int(h) for h in args.hidden.split(",")]

    tracemalloc.start()
    start = proc_status()
    convnet = args.model != "mlp"
    (x_train, t_train), (x_test, t_test) = load_mnist(
        dataset=args.dataset, data_dir=args.data_dir, flatten=not convnet
    )
    dataset_bytes = sum(a.nbytes for a in (x_train, t_train, x_test, t_test))
    loaded = proc_status()

    if args.model == "deepconvnet":
        net: Any = DeepConvNet(dtype="float32", seed=0)
        optimizer: Any = Adam(lr=0.001)
    elif convnet:
        net = SimpleConvNet(weight_init_std=0.01, dtype="float32", seed=0)
        optimizer = Adam(lr=0.001)
    else:
        net = MultiLayerNet(784, hidden, 10, weight_init_std=0.01, dtype="float32", seed=0)
        optimizer = SGD(lr=0.1)
    gc.collect()
    peak_reset = reset_peak_rss()
    tracemalloc.reset_peak()
    before = proc_status()
    traced_before = tracemalloc.get_traced_memory()[0]
    samples: list[dict[str, Any]] = []

    def on_step(step: int, loss: float) -> None:
        if step % args.sample_every == 0 or step == 1:
            current, peak = tracemalloc.get_traced_memory()
            samples.append({"step": step, **proc_status(), "traced": current, "traced_peak": peak})

    started = time.perf_counter()
    history = fit(
        net,
        optimizer,
        x_train,
        t_train,
        x_test,
        t_test,
        batch_size=args.batch_size,
        iters=args.steps,
        callbacks=[LambdaCallback(on_step=on_step)],
    )
    seconds = time.perf_counter() - started
    after = proc_status()
    traced_after, traced_peak = tracemalloc.get_traced_memory()

    steps_per_epoch = iters_per_epoch(len(x_train), args.batch_size)
    settled = next((s for s in samples if s["step"] >= steps_per_epoch), samples[0])
    last = samples[-1]
    history_bytes = sys.getsizeof(history.losses) + 24 * len(history.losses)
    train_peak = after["VmHWM"] if peak_reset else None
    budget = dataset_bytes + BUDGET_OVER_DATASET
    report = {
        "network": repr(net),
        "steps": args.steps,
        "seconds": seconds,
        "final_test_accuracy": history.evaluations[-1].test_accuracy,
        "dataset_float32_bytes": dataset_bytes,
        "budget_bytes": budget,
        "rss_at_start": start["VmRSS"],
        "rss_after_load": loaded["VmRSS"],
        "peak_rss_while_loading": loaded["VmHWM"],
        "rss_before_training": before["VmRSS"],
        "peak_rss_while_training": train_peak,
        "ru_maxrss_whole_run": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "traced_before_training": traced_before,
        "traced_peak_while_training": traced_peak,
        "traced_after_training": traced_after,
        "rss_growth_after_first_epoch": last["VmRSS"] - settled["VmRSS"],
        "child_rss_at_end": last["ChildRSS"],
        "child_peak_rss": last["ChildHWM"],
        "child_rss_growth_after_first_epoch": last["ChildRSS"] - settled["ChildRSS"],
        "pss_growth_after_first_epoch": last["Pss"] - settled["Pss"],
        "traced_growth_after_first_epoch": last["traced"] - settled["traced"],
        "growth_measured_from_step": settled["step"],
        "loss_history_bytes": history_bytes,
        "samples": samples,
    }
    print(f"network {report['network']}, {args.steps} steps of batch {args.batch_size}")
    print(
        f"dataset as float32 (images and labels): {dataset_bytes / MB:.1f} MB; "
        f"budget = that + 150 MB = {budget / MB:.1f} MB"
    )
    print(
        f"RSS at start {start['VmRSS'] / MB:.1f} MB, after loading {loaded['VmRSS'] / MB:.1f} "
        f"MB (peak while loading {loaded['VmHWM'] / MB:.1f} MB)"
    )
    if train_peak is not None:
        verdict = "within" if train_peak <= budget else "OVER"
        print(
            f"peak RSS while training: {train_peak / MB:.1f} MB ({verdict} the budget; "
            f"{(train_peak - before['VmRSS']) / MB:+.1f} MB over the RSS before training)"
        )
    print(
        f"traced (Python + NumPy) allocations: {traced_before / MB:.1f} MB before training, "
        f"peak {traced_peak / MB:.1f} MB during, {traced_after / MB:.1f} MB after"
    )
    print(
        f"growth from step {settled['step']} to {last['step']}: RSS "
        f"{report['rss_growth_after_first_epoch'] / MB:+.2f} MB, traced "
        f"{report['traced_growth_after_first_epoch'] / MB:+.3f} MB (the loss history alone "
        f"holds {history_bytes / MB:.2f} MB)"
    )
    if last["ChildRSS"]:
        print(
            f"child processes (half of each batch): RSS {last['ChildRSS'] / MB:.1f} MB at the "
            f"end, peak {last['ChildHWM'] / MB:.1f} MB, growth "
            f"{report['child_rss_growth_after_first_epoch'] / MB:+.2f} MB; PSS of both "
            f"{last['Pss'] / MB:.1f} MB, growth "
            f"{report['pss_growth_after_first_epoch'] / MB:+.2f} MB"
        )
    print(f"{seconds:.1f} s; final test accuracy {report['final_test_accuracy']:.4f}")
    print("RSS MB by step: " + ", ".join(f"{s['step']}: {s['VmRSS'] / MB:.1f}" for s in samples))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
