"""`chainrule bench` end to end on its smallest workload, few steps: table and fair start."""

import json

from chainrule import benchmark

NUMPY_LOOPS = "chainrule fit,chainrule user loop,NumPy textbook (float64)"


def test_bench_runs_the_loops_from_the_same_start(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--workloads", "a", "--rounds", "2", "--steps", "3", "--settle", "0"]
    assert benchmark.main([*argv, "--loops", NUMPY_LOOPS, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    for loop in NUMPY_LOOPS.split(","):
        assert f"| {loop} |" in table
    report = json.loads(out.read_text())
    # Same weights, same batches: float32 against the book's float64, so the losses of the
    # first steps agree to float32 rounding, not exactly.
    agreement = report["loss_agreement"]["a"]
    assert set(agreement) == set(NUMPY_LOOPS.split(","))
    assert max(agreement.values()) < 1e-5
    assert all(len(v) == 2 for v in report["seconds_per_step_round_means"]["a"].values())
