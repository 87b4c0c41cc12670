"""The training benchmark (bench/bench_train.py, run by `chainrule bench`) end to end on
its smallest workload, few steps: the table, and a fair start for every loop."""

import json
import runpy
from pathlib import Path

import pytest

from chainrule.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_train.py"
NUMPY_LOOPS = "chainrule fit,chainrule book loop,careful NumPy,NumPy textbook (float64)"


@pytest.fixture(scope="module")
def benchmark():
    return runpy.run_path(str(SCRIPT))


def test_bench_runs_the_loops_from_the_same_start(benchmark, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--workloads", "a", "--rounds", "2", "--steps", "3", "--settle", "0"]
    assert benchmark["main"]([*argv, "--loops", NUMPY_LOOPS, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    for loop in NUMPY_LOOPS.split(","):
        assert f"| {loop} |" in table
    assert "difference from chainrule fit's" in table  # no PyTorch here to compare with
    report = json.loads(out.read_text())
    # Same weights, same batches: float32 against the book's float64, so the losses of the
    # first steps agree to float32 rounding, not exactly.
    agreement = report["loss_agreement"]["a"]
    assert set(agreement) == set(NUMPY_LOOPS.split(","))
    assert max(agreement.values()) < 1e-5
    assert all(len(v) == 2 for v in report["seconds_per_step_round_means"]["a"].values())


def test_chainrule_bench_runs_the_script_of_the_checkout(capsys):
    argv = ["bench", "--workloads", "a", "--rounds", "1", "--steps", "2", "--settle", "0"]
    assert main([*argv, "--loops", "chainrule fit"]) == 0
    assert "| chainrule fit |" in capsys.readouterr().out


def test_chainrule_bench_without_a_checkout_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr("chainrule.cli.BENCH_SCRIPT", Path("/nonexistent/bench_train.py"))
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bench/bench_train.py" in err


def test_the_convnet_workload_runs_its_loops_from_the_same_start(benchmark, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--workloads", "d", "--rounds", "1", "--steps", "2", "--settle", "0"]
    loops = "chainrule fit,careful NumPy,NumPy textbook (float64)"
    assert benchmark["main"]([*argv, "--loops", loops, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| (d) SimpleConvNet conv30·5×5-pool-100-10, batch 100 | chainrule fit |" in table
    assert "| careful NumPy |" not in table  # written for the fully connected networks
    agreement = json.loads(out.read_text())["loss_agreement"]["d"]
    assert set(agreement) == {"chainrule fit", "NumPy textbook (float64)"}
    assert max(agreement.values()) < 1e-3  # float32 against the book's float64
