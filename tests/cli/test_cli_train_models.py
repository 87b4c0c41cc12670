"""`chainrule train --model convnet`, `--dropout` and `--batchnorm` (chapters 6 and 7)."""

import json

import numpy as np
import pytest

from chainrule.checkpoint import load_checkpoint
from chainrule.cli import main
from chainrule.layers import BatchNormalization


def test_convnet_trains_saves_plots_and_evaluate_reads_it(tmp_path, capsys):
    paths = {k: tmp_path / f"run.{k}" for k in ("json", "png", "npz")}
    args = ["train", "--model", "convnet", "--iters", "4"]
    args += ["--json", str(paths["json"]), "--plot", str(paths["png"]), "--save", str(paths["npz"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "training SimpleConvNet(1×28×28, 30 filters 5×5, 100, 10, float32), init 0.01 on "
        "mnist-5k (4000 train / 1000 test), Adam(lr=0.001"
    )
    metrics = json.loads(paths["json"].read_text())
    assert metrics["config"]["network"]["network"] == "SimpleConvNet"
    assert len(metrics["history"]["losses"]) == 4
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = load_checkpoint(paths["npz"])
    assert checkpoint.params["W1"].shape == (30, 1, 5, 5)
    assert checkpoint.params["W1"].dtype == np.float32

    assert main(["evaluate", str(paths["npz"]), "--quiet"]) == 0
    test_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test")]
    assert f"accuracy {metrics['test_accuracy']:.4f}" in test_line[0]


def test_convnet_resume_continues_bit_for_bit(tmp_path, capsys):
    straight, half = tmp_path / "straight.npz", tmp_path / "half.npz"
    common = ["train", "--model", "convnet", "--quiet"]
    assert main([*common, "--iters", "4", "--save", str(straight)]) == 0
    assert main([*common, "--iters", "2", "--save", str(half)]) == 0
    assert (
        main(["train", "--quiet", "--resume", str(half), "--iters", "4", "--save", str(half)]) == 0
    )
    a, b = load_checkpoint(straight), load_checkpoint(half)
    assert a.step == b.step == 4
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_dropout_resume_continues_bit_for_bit(tmp_path, capsys):
    # The masks of the steps after the resume come from the saved random state.
    straight, half = tmp_path / "straight.npz", tmp_path / "half.npz"
    common = ["train", "--hidden", "20", "--dropout", "0.3", "--quiet"]
    assert main([*common, "--iters", "6", "--save", str(straight)]) == 0
    assert main([*common, "--iters", "3", "--save", str(half)]) == 0
    assert (
        main(["train", "--quiet", "--resume", str(half), "--iters", "6", "--save", str(half)]) == 0
    )
    a, b = load_checkpoint(straight), load_checkpoint(half)
    assert a.step == b.step == 6
    assert a.meta["history"]["losses"] == b.meta["history"]["losses"]
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_a_dropout_state_numpy_cannot_read_names_the_file(tmp_path, capsys):
    saved = tmp_path / "run.npz"
    assert main(["train", "--hidden", "20", "--dropout", "0.3", "--iters", "2", "--quiet",
                 "--save", str(saved)]) == 0  # fmt: skip
    checkpoint = load_checkpoint(saved)
    checkpoint.meta["dropout_rng"]["Dropout1"]["state"] = {"state": "x"}
    from chainrule.checkpoint import save_checkpoint

    save_checkpoint(saved, checkpoint.params, optimizer_state=checkpoint.optimizer_state,
                    step=checkpoint.step, meta=checkpoint.meta)  # fmt: skip
    assert main(["train", "--resume", str(saved), "--iters", "4"]) == 1
    err = capsys.readouterr().err
    assert str(saved) in err and "Dropout1" in err and len(err.strip().splitlines()) == 1


def test_convnet_refuses_the_fully_connected_flags(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--model", "convnet", "--hidden", "20", "--dropout", "0.2"])
    assert info.value.code == 2
    assert "--model convnet (SimpleConvNet) takes no --hidden, --dropout" in capsys.readouterr().err


@pytest.mark.parametrize("ratio", ["0", "1", "1.5", "x"])
def test_dropout_takes_a_ratio_below_one(ratio, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--dropout", ratio])
    assert info.value.code == 2


def test_dropout_and_batchnorm_build_the_extended_network_and_round_trip(tmp_path, capsys):
    saved = tmp_path / "run.npz"
    args = ["train", "--iters", "6", "--hidden", "30", "30", "--dropout", "0.2"]
    assert main([*args, "--batchnorm", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "training MultiLayerNetExtend(784-30-30-10, relu, float32), batch normalisation, "
        "dropout 0.2, init he, weight decay 0.001 on mnist-5k"
    )
    checkpoint = load_checkpoint(saved)
    network = checkpoint.meta["network"]
    assert network["network"] == "MultiLayerNetExtend"
    assert network["use_dropout"] and network["use_batchnorm"]
    assert network["dropout_ration"] == 0.2
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(checkpoint.params)
    assert set(checkpoint.meta["running_stats"]) == {"BatchNorm1", "BatchNorm2"}

    # evaluate uses the saved running statistics: the accuracy train printed at the end
    from chainrule.training_state import restore_network

    net = restore_network(checkpoint, str(saved))
    norm = net.layers["BatchNorm1"]
    assert isinstance(norm, BatchNormalization)
    np.testing.assert_array_equal(
        norm.running_mean,
        np.asarray(checkpoint.meta["running_stats"]["BatchNorm1"]["running_mean"], np.float32),
    )
    final = checkpoint.meta["history"]["evaluations"][-1]
    assert main(["evaluate", str(saved), "--quiet"]) == 0
    test_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test")]
    assert f"accuracy {final['test_accuracy']:.4f}" in test_line[0]

    # resuming repeats the run's flags or leaves them out; changing them is refused
    assert main(["train", "--quiet", "--resume", str(saved), "--iters", "8", "--batchnorm"]) == 0
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(saved), "--iters", "10", "--dropout", "0.5"])
    assert info.value.code == 2
    assert "--dropout 0.5 (the checkpoint has 0.2)" in capsys.readouterr().err


def test_resume_refuses_new_ch6_and_ch7_flags(tmp_path, capsys):
    mlp, conv = tmp_path / "mlp.npz", tmp_path / "conv.npz"
    assert main(["train", "--quiet", "--iters", "2", "--save", str(mlp)]) == 0
    assert (
        main(["train", "--quiet", "--iters", "2", "--model", "convnet", "--save", str(conv)]) == 0
    )
    capsys.readouterr()
    resume = ["train", "--resume", str(mlp), "--iters", "3"]
    with pytest.raises(SystemExit):
        main([*resume, "--batchnorm", "--dropout", "0.3", "--model", "convnet"])
    err = capsys.readouterr().err
    for refused in (
        "--batchnorm (the checkpoint has False)",
        "--dropout 0.3 (the checkpoint has none)",
        "--model convnet (the checkpoint has mlp)",
    ):
        assert refused in err
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(conv), "--iters", "3", "--hidden", "20", "--model", "mlp"])
    err = capsys.readouterr().err
    assert "--hidden (the checkpoint's network is a convnet)" in err
    assert "--model mlp (the checkpoint has convnet)" in err
    assert (
        main(["train", "--quiet", "--resume", str(conv), "--iters", "3", "--model", "convnet"]) == 0
    )


def test_network_configs_round_trip():
    from chainrule.networks import MultiLayerNetExtend, SimpleConvNet, network_from_config

    nets = [
        SimpleConvNet((1, 12, 12), {"filter_num": 3, "filter_size": 3}, 7, 4, dtype="float32"),
        MultiLayerNetExtend(6, [5, 4], 3, use_dropout=True, dropout_ration=0.3, use_batchnorm=True),
    ]
    for net in nets:
        again = network_from_config(json.loads(json.dumps(net.config())))
        assert type(again) is type(net) and again.config() == net.config()
        assert {k: v.shape for k, v in again.params.items()} == {
            k: v.shape for k, v in net.params.items()
        }
