"""The command line: exit codes, one-line errors, no tracebacks, the gradcheck table."""

import subprocess
import sys

import pytest

from chainrule import __version__
from chainrule.cli import main


def run_module(*args):
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=300
    )


def test_gradcheck_default_passes_and_prints_a_table():
    result = run_module("gradcheck")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TwoLayerNet(784-50-10, relu, float64)" in out
    for name in ("W1", "b1", "W2", "b2"):
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "relative error = max|" in out and "PASS" in out


def test_gradcheck_multilayer(capsys):
    assert (
        main(
            [
                "gradcheck",
                "--hidden",
                "8",
                "--layers",
                "2",
                "--samples",
                "2",
                "--activation",
                "sigmoid",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "MultiLayerNet(784-8-8-10, sigmoid, float64)" in out
    assert [line.split()[0] for line in out.splitlines() if line[:1] in "Wb"] == [
        "W1",
        "b1",
        "W2",
        "b2",
        "W3",
        "b3",
    ]


def test_gradcheck_fails_with_exit_one_when_tolerance_is_impossible(capsys):
    assert main(["gradcheck", "--hidden", "4", "--samples", "1", "--tolerance", "1e-300"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"chainrule {__version__}"
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    assert "--samples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["gradcheck", "--samples", "0"],
        ["gradcheck", "--hidden", "x"],
        ["nope"],
        ["gradcheck", "--hidden", "4", "5", "--layers", "3"],
        ["gradcheck", "--step", "-1"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_two(args):
    result = run_module(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and "error:" in result.stderr


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["train", "--learning-rate", "0.1"], "did you mean --lr (not --learning-rate)?"),
        (["train", "--optimiser", "adam"], "did you mean --optimizer (not --optimiser)?"),
        (["train", "--batch_size=10"], "did you mean --batch-size (not --batch_size)?"),
        (["graph", "apple", "--outptu", "g.dot"], "did you mean --output (not --outptu)?"),
        (["train", "--frobnicate"], "unrecognized arguments: --frobnicate (see"),
    ],
    ids=["initials", "spelling", "underscore", "typo", "no-match"],
)
def test_a_mistyped_flag_gets_the_closest_one_and_the_commands_own_help(usage_error, args, answer):
    line = usage_error(args)
    assert answer in line
    assert line.startswith(f"chainrule {args[0]}: error: ")
    assert line.endswith(f"(see 'chainrule {args[0]} --help')")


def test_a_commands_own_usage_errors_point_to_its_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", "--hidden", "4", "5", "--layers", "3"])
    assert info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        "chainrule gradcheck: error: --layers 3 does not match 2 --hidden sizes "
        "(see 'chainrule gradcheck --help')"
    )


def test_no_command_prints_help_and_exits_two(capsys):
    assert main([]) == 2
    assert "gradcheck" in capsys.readouterr().out


def test_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.npz")
    quiet = run_module("evaluate", missing)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = run_module("--debug", "evaluate", missing)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "CheckpointError" in loud.stderr


def test_bench_runs_and_prints_a_table(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    loops = "chainrule fit,NumPy textbook (float64)"
    assert (
        main(
            [
                "bench",
                "--workloads",
                "a",
                "--rounds",
                "1",
                "--steps",
                "3",
                "--loops",
                loops,
                "--settle",
                "0",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| (a) 784-50-10, batch 100 | chainrule fit |" in out
    assert '"summary"' in out_json.read_text()


def test_bench_rejects_unknown_workloads():
    result = run_module("bench", "--workloads", "z")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_mistyped_command_gets_a_did_you_mean(usage_error):
    assert "unknown command 'trian'; did you mean train?" in usage_error(["trian"])
    assert "did you mean explain?" in usage_error(["--debug", "explian", "apple"])
    assert "choose one of" in usage_error(["xyzzy"])
