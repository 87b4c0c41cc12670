"""`chainrule train` and `chainrule evaluate` as a user runs them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule.checkpoint import load_checkpoint
from chainrule.cli import main


def run_module(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def test_train_writes_json_plot_and_checkpoint_that_evaluate_reads(tmp_path, capsys):
    paths = {k: tmp_path / f"run.{k}" for k in ("json", "png", "npz")}
    assert (
        main(
            [
                "train",
                "--epochs",
                "2",
                "--quiet",
                "--json",
                str(paths["json"]),
                "--plot",
                str(paths["png"]),
                "--save",
                str(paths["npz"]),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    metrics = json.loads(paths["json"].read_text())
    for key in ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "seconds"):
        assert isinstance(metrics[key], float)
    assert metrics["config"]["train"]["dataset"] == "mnist-5k"
    assert len(metrics["history"]["losses"]) == 2 * 40  # 4,000 images / batch 100
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in out
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = load_checkpoint(paths["npz"])
    assert checkpoint.step == 80
    assert set(checkpoint.params) == {"W1", "b1", "W2", "b2"}

    assert main(["evaluate", str(paths["npz"]), "--quiet"]) == 0
    test_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test")]
    assert f"accuracy {metrics['test_accuracy']:.4f}" in test_line[0]


def test_resume_continues_bit_for_bit(tmp_path, capsys):
    straight, first_half = tmp_path / "straight.npz", tmp_path / "half.npz"
    common = ["train", "--quiet", "--optimizer", "momentum", "--lr", "0.05", "--hidden", "20"]
    assert main([*common, "--iters", "50", "--save", str(straight)]) == 0
    assert main([*common, "--iters", "23", "--save", str(first_half)]) == 0
    assert (
        main(
            [
                "train",
                "--quiet",
                "--resume",
                str(first_half),
                "--iters",
                "50",
                "--save",
                str(first_half),
            ]
        )
        == 0
    )
    capsys.readouterr()
    a, b = load_checkpoint(straight), load_checkpoint(first_half)
    assert a.step == b.step == 50
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    for key in a.optimizer_state:
        np.testing.assert_array_equal(a.optimizer_state[key], b.optimizer_state[key])
    assert a.meta["history"]["losses"] == b.meta["history"]["losses"]


def test_resume_refuses_flags_that_would_change_the_run(tmp_path, capsys):
    checkpoint = tmp_path / "run.npz"
    common = ["--quiet", "--iters", "5", "--optimizer", "momentum", "--hidden", "20"]
    assert main(["train", *common, "--save", str(checkpoint)]) == 0
    changed = ["--hidden", "100", "--dataset", "fashion-mnist", "--optimizer", "adam"]
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(checkpoint), "--iters", "10", *changed])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    for refused in (
        "--hidden 100 (the checkpoint has 20)",
        "--dataset fashion-mnist (the checkpoint has mnist-5k)",
        "--optimizer adam (the checkpoint has momentum)",
    ):
        assert refused in lines[0]
    assert f"--resume {checkpoint} continues the checkpoint's run and cannot change" in lines[0]
    assert load_checkpoint(checkpoint).step == 5  # nothing trained
    # The run's own flags, repeated, change nothing: accepted.
    assert main(["train", *common, "--resume", str(checkpoint), "--iters", "7"]) == 0


def test_resume_applies_a_new_learning_rate_and_says_so(tmp_path, capsys):
    checkpoint = tmp_path / "run.npz"
    assert (
        main(["train", "--quiet", "--iters", "5", "--lr", "0.05", "--save", str(checkpoint)]) == 0
    )
    capsys.readouterr()
    resume = ["train", "--resume", str(checkpoint), "--iters", "8", "--lr", "0.01"]
    assert main([*resume, "--save", str(checkpoint)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("resuming at step 5 with --lr 0.01 (was 0.05): ")
    assert "SGD(lr=0.01)" in header and header.endswith("8 steps")
    saved = load_checkpoint(checkpoint)
    assert saved.step == 8 and saved.meta["optimizer"]["lr"] == 0.01
    assert float(saved.optimizer_state["lr"]) == 0.01


def test_flags_reach_the_network_and_optimizer(tmp_path, capsys):
    out_json = tmp_path / "m.json"
    assert (
        main(
            [
                "train",
                "--quiet",
                "--iters",
                "3",
                "--hidden",
                "16",
                "8",
                "--activation",
                "sigmoid",
                "--init",
                "xavier",
                "--optimizer",
                "Adam",
                "--lr",
                "0.002",
                "--batch-size",
                "32",
                "--weight-decay",
                "0.001",
                "--dtype",
                "float64",
                "--seed",
                "4",
                "--sampling",
                "with-replacement",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    config = json.loads(out_json.read_text())["config"]
    assert config["network"]["hidden_size_list"] == [16, 8]
    assert config["network"]["activation"] == "sigmoid"
    assert config["network"]["dtype"] == "float64"
    assert config["network"]["weight_decay_lambda"] == 0.001
    assert config["optimizer"]["name"] == "adam" and config["optimizer"]["lr"] == 0.002
    assert config["train"] == {
        "dataset": "mnist-5k",
        "batch_size": 32,
        "seed": 4,
        "sampling": "with-replacement",
        "init": "xavier",
        "epochs": None,
        "iters": 3,
    }


def test_a_batch_larger_than_the_data_is_shown_as_the_batch_that_trains(capsys):
    assert main(["train", "--iters", "2", "--batch-size", "10000", "--hidden", "10"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "batch 4000 (the whole training set: --batch-size 10000 is more than its images)" in (
        header
    )


def test_train_help_names_the_network_that_train_builds(capsys):
    assert main(["train", "--epochs", "1"]) == 0  # the default run, one epoch of it
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith(
        "training the book's two-layer network MultiLayerNet(784-50-10, relu, float32), "
        "init he, weight decay 0.001 on "
    )
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "With no arguments: the book's 784-50-10 ReLU network as a MultiLayerNet with init he "
        "and weight decay 0.001"
    ) in help_text
    assert "SGD lr 0.1, batch 100, 60 epochs" in help_text


def test_progress_and_epoch_lines(capsys):
    assert main(["train", "--epochs", "1", "--hidden", "10"]) == 0
    captured = capsys.readouterr()
    assert "epoch   1.00" in captured.out and "test acc" in captured.out
    assert "done in" in captured.out


def test_diverging_run_exits_one_and_keeps_the_last_good_checkpoint(tmp_path):
    checkpoint = tmp_path / "run.npz"
    result = run_module(
        "train",
        "--quiet",
        "--iters",
        "200",
        "--lr",
        "1e6",
        "--save-every",
        "1",
        "--save",
        str(checkpoint),
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "step" in lines[0] and "learning rate" in lines[0]
    assert "Traceback" not in result.stderr
    saved = load_checkpoint(checkpoint)
    assert all(np.isfinite(p).all() for p in saved.params.values())
    assert 1 <= saved.step < 200


@pytest.mark.parametrize(
    ("lr", "why"),
    [
        ("10", "train accuracy 0.1000 is chance level (10 classes) after the training loss jumped"),
        ("1000", "the training loss rose from"),
    ],
    ids=["at-chance", "loss-rose"],
)
def test_a_far_too_high_finite_learning_rate_ends_with_one_line_and_exit_one(
    tmp_path, capsys, lr, why
):
    out_json = tmp_path / "m.json"
    assert main(["train", "--quiet", "--epochs", "2", "--lr", lr, "--json", str(out_json)]) == 1
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and why in message
    assert (
        f"the learning rate {lr} is too high; try a smaller --lr, e.g. {float(lr) / 10:g}"
        in message
    )
    assert out_json.exists()  # the run's outputs are still written, to look at


def test_a_short_run_at_a_working_learning_rate_is_not_called_diverged(capsys):
    # lr 1 trains mnist-5k to 90% test accuracy, though its loss jumps to twice the first in
    # the first steps and, after 5 steps, is still a little above where it started.
    assert main(["train", "--quiet", "--iters", "5", "--lr", "1"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--lr", "-1"],
        ["train", "--batch-size", "0"],
        ["train", "--dataset", "bogus"],
        ["train", "--epochs", "2", "--iters", "3"],
        ["train", "--init", "wide"],
        ["train", "--optimizer", "lbfgs"],
        ["evaluate"],
    ],
)
def test_bad_flags_one_line_exit_two(args):
    result = run_module(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_dataset_names_files_and_folder(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "CHAINRULE_DATA": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
    }
    # --data-dir with files missing: nothing to download into a folder the user chose?
    # chainrule tries the mirrors; with no network here the download fails fast.
    result = run_module(
        "train", "--quiet", "--dataset", "fashion-mnist", "--data-dir", str(empty), env=env
    )
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "train-images-idx3-ubyte" in message and str(empty) in message
    assert "--data-dir" in message


def test_missing_dataset_is_a_short_line_and_the_detail_waits_for_debug(
    tmp_path, monkeypatch, capsys
):
    from chainrule.errors import DataError, DownloadError

    def no_network(filename, mirrors, target, **options):
        target.mkdir(parents=True, exist_ok=True)  # as download() does before it fetches
        raise DownloadError(
            f"could not download {filename}: every mirror failed.\n  - {mirrors[0]}"
        )

    monkeypatch.setattr("chainrule.data.mnist._download", no_network)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))
    assert main(["train", "--quiet", "--dataset", "mnist"]) == 1
    message = capsys.readouterr().err.strip()
    assert message == (
        "chainrule: error: the mnist data set is missing: its four IDX files "
        f"(train-images-idx3-ubyte ...) are not in {tmp_path / 'cache' / 'mnist'}, and the "
        "download failed; pass the folder that holds them with --data-dir DIR (data_dir= in "
        "Python); 'chainrule fetch mnist DIR' downloads them into DIR; --debug shows the "
        "details."
    )
    with pytest.raises(DataError) as info:  # --debug: the traceback, with the detail under it
        main(["--debug", "train", "--quiet", "--dataset", "mnist"])
    detail = "\n".join(info.value.__notes__)
    assert "Looked in:" in detail and "every mirror failed" in detail
    assert "download=True" not in str(info.value) + detail  # it was on, and failed


def test_missing_or_corrupt_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    for path in (bad, tmp_path / "absent.npz"):
        result = run_module("evaluate", str(path))
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert str(path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "data"),
    [("notes.txt", b"remember the milk\n"), ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(64))],
    ids=["text", "png"],
)
def test_a_file_that_is_no_checkpoint_is_named_without_pickle_advice(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    result = run_module("evaluate", str(path))
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert str(path) in message and "is not a zip archive, so not a checkpoint" in message
    assert "a checkpoint is the .npz file" in message
    assert "pickle" not in message  # NumPy's allow_pickle= advice: the file is no pickle


def test_resume_past_the_end_is_explained(tmp_path, capsys):
    checkpoint = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--iters", "5", "--save", str(checkpoint)]) == 0
    assert main(["train", "--quiet", "--resume", str(checkpoint)]) == 1
    assert "already at step 5" in capsys.readouterr().err


def test_checkpoints_not_written_by_train_are_explained(tmp_path):
    from chainrule import TwoLayerNet
    from chainrule.checkpoint import save_checkpoint

    net = TwoLayerNet(784, 5, 10)
    bare, odd = tmp_path / "bare.npz", tmp_path / "odd.npz"
    mismatched = tmp_path / "mismatched.npz"
    save_checkpoint(bare, net.params)  # no meta at all
    save_checkpoint(odd, net.params, meta={"network": net.config(), "optimizer": {}})
    wider = TwoLayerNet(784, 6, 10).config()  # meta that does not describe the weights
    save_checkpoint(mismatched, net.params, meta={"network": wider})
    for args in (
        ["evaluate", str(bare)],
        ["train", "--resume", str(bare)],
        ["train", "--resume", str(odd)],
        ["evaluate", str(mismatched)],
    ):
        result = run_module(*args)
        assert result.returncode == 1, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr and args[-1] in result.stderr


def _fake_download(monkeypatch, chunks):
    """load_mnist replaced by one that reports ``chunks`` of download progress."""

    def fake_load_mnist(dataset, data_dir, progress, flatten=True):
        for done, total in chunks if progress is not None else ():
            progress(done, total)
        return "the data"

    monkeypatch.setattr("chainrule.data.mnist.load_mnist", fake_load_mnist)


def test_download_progress_shows_one_bar_per_file(monkeypatch, capsys):
    from chainrule.cli.data import load_data

    monkeypatch.setattr("chainrule.cli.progress._stderr_is_a_terminal", lambda: True)
    _fake_download(monkeypatch, [(0, 10), (10, 10), (0, 4), (4, 4)])  # two files
    assert load_data("mnist", None, quiet=False) == "the data"
    assert capsys.readouterr().err.count("download") >= 2


def test_download_without_tqdm_has_no_bar_and_no_error(monkeypatch, capsys):
    from chainrule.cli.data import load_data

    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm is an optional extra
    _fake_download(monkeypatch, [(0, 10), (10, 10)])
    assert load_data("mnist", None, quiet=False) == "the data"
    assert "download" not in capsys.readouterr().err
