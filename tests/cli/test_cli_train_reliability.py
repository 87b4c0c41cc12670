"""`chainrule train` and `evaluate` keep work and refuse what they cannot use: a resume
saves where it was saved, a checkpoint remembers its data, an interrupted run keeps its
evaluation and never saves NaN, sizes are bounded, a log gets lines and not bars."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.checkpoint import load_checkpoint, save_checkpoint
from chainrule.cli import main
from chainrule.data import write_idx

README = Path(__file__).resolve().parents[2] / "README.md"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def write_fake_mnist(folder: Path, n_train: int = 30, n_test: int = 10) -> None:
    folder.mkdir()
    rng = np.random.default_rng(n_train)
    arrays = []
    for n in (n_train, n_test):
        arrays += [
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            np.arange(n, dtype=np.uint8) % 10,
        ]
    for name, array in zip(IDX_FILES, arrays, strict=True):
        write_idx(folder / name, array)


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """An empty cache, and a download that fails the test: data must come from --data-dir."""

    def download(*args, **kwargs):
        raise AssertionError("a download was tried")

    monkeypatch.setattr("chainrule.data.mnist._download", download)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "empty-cache"))


def test_a_resume_keeps_saving_to_the_checkpoint_it_resumed_from(tmp_path, capsys):
    run = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--hidden", "10", "--iters", "3", "--save", str(run)]) == 0
    assert main(["train", "--quiet", "--resume", str(run), "--iters", "5"]) == 0
    assert load_checkpoint(run).step == 5
    assert f"saved {run}" in capsys.readouterr().out
    other = tmp_path / "other.npz"  # --save still names another file
    assert (
        main(["train", "--quiet", "--resume", str(run), "--iters", "7", "--save", str(other)]) == 0
    )
    assert load_checkpoint(run).step == 5 and load_checkpoint(other).step == 7


def test_the_checkpoint_remembers_its_data_folder(tmp_path, monkeypatch, capsys, no_download):
    write_fake_mnist(tmp_path / "digits")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run.npz"
    args = ["--quiet", "--dataset", "mnist", "--hidden", "10", "--batch-size", "10"]
    assert main(["train", *args, "--iters", "3", "--data-dir", "digits", "--save", str(run)]) == 0
    assert load_checkpoint(run).meta["train"]["data_dir"] == str(tmp_path / "digits")
    monkeypatch.chdir(tmp_path.parent)  # the relative name would no longer find it
    assert main(["train", "--quiet", "--resume", str(run), "--iters", "6"]) == 0
    assert main(["evaluate", str(run), "--quiet"]) == 0
    assert "(10 images of mnist)" in capsys.readouterr().out
    # An explicit --data-dir wins, and a resume records it.
    write_fake_mnist(tmp_path / "more", n_train=40, n_test=20)
    assert main(["evaluate", str(run), "--quiet", "--data-dir", str(tmp_path / "more")]) == 0
    assert "(20 images of mnist)" in capsys.readouterr().out
    resume = ["train", "--quiet", "--resume", str(run), "--iters", "9"]
    assert main([*resume, "--data-dir", str(tmp_path / "more")]) == 0
    assert load_checkpoint(run).meta["train"]["data_dir"] == str(tmp_path / "more")
    # The remembered folder gone: the message says whose memory it was.
    (tmp_path / "more").rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--quiet"]) == 1
    line = one_error_line(capsys)
    assert f"{run} was trained on mnist from {tmp_path / 'more'}, which is no longer" in line
    assert "pass the folder that holds the files now with --data-dir DIR" in line


def test_a_missing_data_folder_is_an_error_not_created_and_nothing_downloaded(
    tmp_path, capsys, no_download
):
    missing = tmp_path / "typo"
    assert main(["train", "--quiet", "--dataset", "mnist", "--data-dir", str(missing)]) == 1
    line = one_error_line(capsys)
    assert f"--data-dir {missing}: no such folder" in line
    assert f"chainrule fetch mnist {missing}" in line
    assert not missing.exists()


def test_a_file_as_data_folder_says_so(tmp_path, capsys, no_download):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    run = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--iters", "1", "--hidden", "5", "--save", str(run)]) == 0
    assert main(["evaluate", str(run), "--dataset", "mnist", "--data-dir", str(notes)]) == 1
    assert f"--data-dir {notes} is a file, not a folder" in one_error_line(capsys)


def test_off_a_terminal_no_bars_but_a_line_per_epoch():
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", "--epochs", "2", "--hidden", "10"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and result.stderr == ""
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epochs] == ["1.00", "2.00"]


def test_what_train_prints_is_what_the_quickstart_says(capsys):
    assert main(["train", "--iters", "1"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("training the book's two-layer network MultiLayerNet(784-50-10")
    quickstart = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1][:300]
    assert "the book's two-layer network" in quickstart


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
        (["--hidden", "1000000000"], "--hidden 1000000000: the network is too large: its "),
        (["--hidden", "50", "--layers", "100000"], "--layers 100000: at most 1000 hidden layers"),
        (["--hidden", *["5"] * 1001], "--hidden: 1001 sizes, at most 1000 hidden layers"),
    ],
    ids=["negative-seed", "huge-hidden", "many-layers", "many-sizes"],
)
def test_sizes_and_seeds_that_cannot_work_are_usage_errors(usage_error, flags, message):
    assert message in usage_error(["train", *flags])


class SignalAtStep(list):
    """Stands for the signals received: none until the ``step``-th step has ended."""

    def __init__(self, step: int, signum: int = signal.SIGINT) -> None:
        super().__init__([signum])
        self.step, self.checks = step, 0

    def __bool__(self) -> bool:
        self.checks += 1  # train looks once at the end of every step
        return self.checks >= self.step


def signal_at(monkeypatch, step):
    @contextlib.contextmanager
    def fake():
        yield SignalAtStep(step)

    monkeypatch.setattr("chainrule.cli.stopping.stop_at_step_boundary_on_signal", fake)


def test_ctrl_c_at_an_epochs_last_step_keeps_its_evaluation(tmp_path, monkeypatch, capsys):
    straight, run = tmp_path / "straight.npz", tmp_path / "run.npz"
    common = ["train", "--quiet", "--hidden", "10", "--epochs", "2"]  # 40 steps an epoch
    assert main([*common, "--save", str(straight)]) == 0
    with monkeypatch.context() as patch:
        signal_at(patch, 40)
        assert main([*common, "--save", str(run)]) == 130
    assert "interrupted at step 40; saved" in one_error_line(capsys)
    assert [e["step"] for e in load_checkpoint(run).meta["history"]["evaluations"]] == [40]
    assert main(["train", "--quiet", "--resume", str(run)]) == 0
    resumed, whole = (load_checkpoint(p).meta["history"] for p in (run, straight))
    assert [e["step"] for e in resumed["evaluations"]] == [40, 80]
    assert len(resumed["losses"]) == len(whole["losses"]) == 80


def test_an_interrupted_run_never_saves_nan_over_a_good_checkpoint(tmp_path, monkeypatch, capsys):
    import chainrule.train

    run = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--hidden", "10", "--iters", "3", "--save", str(run)]) == 0
    good = run.read_bytes()
    real_fit = chainrule.train.fit

    def diverging_fit(net, *args, callbacks, **kwargs):
        def step(done, loss):
            if done == 5:
                net.params["W1"][0, 0] = np.inf  # the update of this step overflowed

        overflow = chainrule.train.LambdaCallback(on_step=step)  # before the command's own
        return real_fit(net, *args, callbacks=[overflow, *callbacks], **kwargs)

    monkeypatch.setattr(chainrule.train, "fit", diverging_fit)
    signal_at(monkeypatch, 2)
    capsys.readouterr()
    assert main(["train", "--quiet", "--resume", str(run), "--iters", "10"]) == 130
    line = one_error_line(capsys)
    assert "interrupted at step 5; not saved: the parameters are not finite at step 5" in line
    assert run.read_bytes() == good


def test_evaluate_refuses_non_finite_weights(tmp_path, capsys):
    run = tmp_path / "run.npz"
    assert main(["train", "--quiet", "--hidden", "10", "--iters", "2", "--save", str(run)]) == 0
    saved = load_checkpoint(run)
    saved.params["b2"][3] = np.nan
    save_checkpoint(
        run, saved.params, optimizer_state=saved.optimizer_state, step=2, meta=saved.meta
    )
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 1
    line = one_error_line(capsys)
    assert str(run) in line and "the weights b2 hold NaN or infinity" in line


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_saves_and_stops_as_ctrl_c_does(tmp_path):
    run = tmp_path / "run.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "train", "--quiet", "--epochs", "2000", "--hidden",
         "20", "--save", str(run), "--save-every", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while not run.exists():
            assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "terminated at step" in lines[0] and "--resume" in lines[0]
    step = int(lines[0].split("terminated at step ")[1].split(";")[0])
    assert load_checkpoint(run).step == step


# A description is checked field by field: each of these mutations of a real one is one
# line naming the file and the field, for evaluate and for --resume.
MUTATIONS = [
    ("network", [1, 2], "description.network must be an object"),
    ("network", "MultiLayerNet", "description.network must be an object"),
    ("network", None, "description.network must be an object"),
    ("network.hidden_size_list", [], "description.network.hidden_size_list must be a list of 1"),
    # Refused for the memory it would take, or as unlike the stored weights, unbuilt.
    ("network.hidden_size_list", [3_000_000], "refused|'W1' is (784, 10) float32, the desc"),
    ("network.hidden_size_list", [10**12], "hidden_size_list[0] must be an integer from 1 to"),
    ("network.hidden_size_list", [5] * 100_000, "hidden_size_list must be a list of 1 to 1000"),
    ("network.input_size", "784", "description.network.input_size must be an integer"),
    ("network.network", "Transformer", "description.network.network must be one of"),
    ("running_stats", [1], "description.running_stats must be an object"),
    ("train.seed", None, "description.train.seed is missing"),
    ("train.batch_size", 0, "description.train.batch_size must be an integer from 1"),
    ("train.batch_size", "100", "description.train.batch_size must be an integer from 1"),
    ("train.epochs", 1e300, "description.train.epochs must be an integer from 1"),
    ("train.epochs", "abc", "description.train.epochs must be an integer from 1"),
    ("history.losses", "abc", "description.history.losses must be a list"),
    ("optimizer.lr", "fast", "description.optimizer.lr must be a finite number"),
]


def mutated(meta: dict, field: str, value) -> dict:
    meta = json.loads(json.dumps(meta))
    *parents, last = field.split(".")
    target = meta
    for name in parents:
        target = target[name]
    if value is None and field == "train.seed":
        del target[last]
    else:
        target[last] = value
    return meta


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run.npz"
    assert main(["train", "--quiet", "--hidden", "10", "--iters", "2", "--save", str(run)]) == 0
    return load_checkpoint(run)


@pytest.mark.parametrize(("field", "value", "message"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutated_description_is_one_line_naming_the_field(
    trained, tmp_path, capsys, field, value, message
):
    bad = tmp_path / "bad.npz"
    meta = mutated(trained.meta, field, value)
    save_checkpoint(bad, trained.params, optimizer_state=trained.optimizer_state, step=2, meta=meta)
    for command in (["evaluate", str(bad)], ["train", "--resume", str(bad), "--iters", "3"]):
        capsys.readouterr()
        assert main(command) == 1
        line = one_error_line(capsys)
        assert str(bad) in line and any(part in line for part in message.split("|")), line
        assert len(line) < 400


def test_a_description_nested_200000_deep_is_one_line(trained, tmp_path, capsys):
    bad = tmp_path / "deep.npz"
    save_checkpoint(bad, trained.params, step=2, meta=trained.meta)
    # Replace the description by 200,000 nested lists (json.dumps itself would recurse).
    text = b"[" * 200_000 + b"]" * 200_000
    with zipfile.ZipFile(bad) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    header = np.lib.format.header_data_from_array_1_0(np.frombuffer(text, np.uint8))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    members["meta_json.npy"] = buffer.getvalue() + text
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert main(["evaluate", str(bad)]) == 1
    assert "nested too deeply" in one_error_line(capsys)


@pytest.mark.parametrize(
    "network",
    [
        "TwoLayerNet(784, 7, 10)",
        "MultiLayerNet(12, [5, 4, 3], 6)",
        "MultiLayerNetExtend(12, [5, 4], 3, use_batchnorm=True, use_dropout=True)",
        "MultiLayerNetExtend(12, [5], 3)",
        "SimpleConvNet((1, 28, 28))",
        "SimpleConvNet((3, 13, 11), {'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 2})",
    ],
)
def test_the_shapes_a_description_implies_are_the_networks_own(network):
    from chainrule import networks
    from chainrule.description import check_description, parameter_shapes

    net = eval(network, vars(networks))
    check_description({"network": net.config()}, "net.npz")
    shapes = {name: value.shape for name, value in net.params.items()}
    assert parameter_shapes(net.config()) == shapes
