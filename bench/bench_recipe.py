"""The book's MNIST recipe, end to end: chainrule's ``fit`` against the same in PyTorch.

Run by hand, not in CI::

    python bench/bench_recipe.py --data-dir /tmp/mnist-full [--repeats 3] [--json out.json]

The recipe of chapter 5 (``train_neuralnet.py``): ``TwoLayerNet(784, 50, 10)`` with the
0.01 initial scale, SGD with learning rate 0.1, batches of 100 drawn with replacement,
10,000 steps, and after each epoch (600 steps) the loss and accuracy on all 60,000
training and 10,000 test images, plus once more after the last step.

Both runs start from the same weights and see the same batches (``fit``'s own sampling,
``sampling="with-replacement"``); PyTorch runs float32 ``nn.Linear``/``nn.ReLU``/
``CrossEntropyLoss``/``optim.SGD`` with its default threads and evaluates under
``torch.no_grad()`` in chunks of 10,000, as ``fit`` does. The two alternate ``--repeats``
times in one process; the table gives the median wall time of each and every final
accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

from chainrule import TwoLayerNet
from chainrule.data.mnist import load_mnist
from chainrule.optim import SGD
from chainrule.train import epoch_batches, fit, iters_per_epoch

BATCH, STEPS, LR = 100, 10_000, 0.1


def run_chainrule(data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    net = TwoLayerNet(784, 50, 10, seed=seed)
    start = time.perf_counter()
    history = fit(
        net,
        SGD(lr=LR),
        data["x_train"],
        data["t_train"],
        data["x_test"],
        data["t_test"],
        batch_size=BATCH,
        iters=STEPS,
        seed=seed,
        sampling="with-replacement",
    )
    seconds = time.perf_counter() - start
    last = history.evaluations[-1]
    return {
        "seconds": seconds,
        "train_accuracy": last.train_accuracy,
        "test_accuracy": last.test_accuracy,
        "evaluations": len(history.evaluations),
    }


def run_pytorch(data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    import torch

    params = TwoLayerNet(784, 50, 10, seed=seed).params  # the same initial weights
    model = torch.nn.Sequential(torch.nn.Linear(784, 50), torch.nn.ReLU(), torch.nn.Linear(50, 10))
    with torch.no_grad():
        for i, linear in ((1, model[0]), (2, model[2])):
            linear.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
            linear.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x_train, t_train = torch.from_numpy(data["x_train"]), torch.from_numpy(data["t_train"])
    x_test, t_test = torch.from_numpy(data["x_test"]), torch.from_numpy(data["t_test"])
    steps_per_epoch = iters_per_epoch(len(x_train), BATCH)

    def evaluate(x: Any, t: Any) -> tuple[float, float]:
        total, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x), 10_000):
                scores = model(x[start : start + 10_000])
                labels = t[start : start + 10_000]
                total += loss_fn(scores, labels).item() * len(labels)
                correct += int((scores.argmax(dim=1) == labels).sum())
        return total / len(x), correct / len(x)

    start = time.perf_counter()
    evaluations = []
    for step in range(STEPS):
        epoch, position = divmod(step, steps_per_epoch)
        if position == 0:
            batches = torch.from_numpy(
                epoch_batches(len(x_train), BATCH, steps_per_epoch, seed, epoch, "with-replacement")
            )
        index = batches[position]
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[index]), t_train[index])
        loss.backward()
        optimizer.step()
        loss.item()  # as fit records every step's loss
        done = step + 1
        if done % steps_per_epoch == 0 or done == STEPS:
            evaluations.append((evaluate(x_train, t_train), evaluate(x_test, t_test)))
    seconds = time.perf_counter() - start
    (_, train_accuracy), (_, test_accuracy) = evaluations[-1]
    return {
        "seconds": seconds,
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
        "evaluations": len(evaluations),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="/tmp/mnist-full", help="the four MNIST IDX files")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--seed", type=int, default=0, help="weights and batches")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds between runs")
    parser.add_argument("--json", metavar="PATH", help="also write the runs as JSON")
    args = parser.parse_args(argv)
    (x_train, t_train), (x_test, t_test) = load_mnist(dataset="mnist", data_dir=args.data_dir)
    data = {"x_train": x_train, "t_train": t_train, "x_test": x_test, "t_test": t_test}
    runners = {"chainrule fit": run_chainrule}
    try:
        import torch

        runners["PyTorch"] = run_pytorch
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "PyTorch not installed"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for repeat in range(args.repeats):
        order = list(runners) if repeat % 2 == 0 else list(runners)[::-1]
        for name in order:
            time.sleep(args.settle)
            runs[name].append(runners[name](data, args.seed))
            print(f"{name}: {runs[name][-1]}", file=sys.stderr)
    print(
        f"Book recipe on full MNIST: TwoLayerNet 784-50-10, SGD lr {LR}, batch {BATCH}, "
        f"{STEPS} steps, evaluation each epoch; {args.repeats} runs of each ({torch_info})"
    )
    print()
    print("| loop | median time (s) | all times (s) | final train accuracy | final test accuracy |")
    print("|---|---:|---|---:|---:|")
    for name, results in runs.items():
        times = [r["seconds"] for r in results]
        print(
            f"| {name} | {statistics.median(times):.2f} | "
            f"{', '.join(f'{t:.2f}' for t in times)} | {results[-1]['train_accuracy']:.4f} | "
            f"{results[-1]['test_accuracy']:.4f} |"
        )
    if "PyTorch" in runs:
        ratio = statistics.median(r["seconds"] for r in runs["PyTorch"]) / statistics.median(
            r["seconds"] for r in runs["chainrule fit"]
        )
        print(f"\nchainrule is {ratio:.2f}× as fast as PyTorch on the whole recipe")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "torch": torch_info, "seed": args.seed}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
