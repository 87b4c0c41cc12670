"""Tests for chainrule.training_state: a library user resumes a run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.checkpoint import load_checkpoint, save_checkpoint
from chainrule.description import check_description, parameter_shapes
from chainrule.errors import ArgumentError, CheckpointError
from chainrule.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu
from chainrule.networks import DeepConvNet, MultiLayerNetExtend, Sequential, SimpleConvNet
from chainrule.optim import Adam
from chainrule.train import Resume, fit
from chainrule.training_state import load_training, restore_network, save_training

STEPS, SAVED_AT = 12, 5  # 12 steps of batch 20 over 60 samples: resumed mid-epoch


def data(shape: tuple[int, ...], classes: int = 4):
    rng = np.random.default_rng(7)
    return rng.random((60, *shape), dtype=np.float32), rng.integers(0, classes, 60)


def extend_net() -> MultiLayerNetExtend:
    return MultiLayerNetExtend(
        16, [12, 10], 4, use_dropout=True, dropout_ration=0.2, use_batchnorm=True,
        dtype=np.float32, seed=3,
    )  # fmt: skip


def small_deep_convnet() -> DeepConvNet:
    convs = [{"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}] * 6
    return DeepConvNet((1, 8, 8), *convs, hidden_size=6, output_size=4, seed=3)


def small_simple_convnet() -> SimpleConvNet:
    conv = {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}
    return SimpleConvNet((1, 8, 8), conv, hidden_size=6, output_size=4, seed=3)


def running_stats(net) -> list[np.ndarray]:
    return [
        stat
        for layer in net.layers.values()
        if isinstance(layer, BatchNormalization)
        for stat in (layer.running_mean, layer.running_var)
    ]


@pytest.mark.parametrize(
    ("build", "shape"),
    [(extend_net, (16,)), (small_deep_convnet, (1, 8, 8)), (small_simple_convnet, (1, 8, 8))],
)
def test_a_run_saved_loaded_and_resumed_is_the_uninterrupted_run(build, shape, tmp_path):
    x, t = data(shape)
    straight = build()
    whole = fit(straight, Adam(lr=0.01), x, t, batch_size=20, iters=STEPS, seed=1)

    first = build()
    optimizer = Adam(lr=0.01)
    history = fit(first, optimizer, x, t, batch_size=20, iters=SAVED_AT, seed=1)
    path = save_training(tmp_path / "run.npz", first, optimizer, step=SAVED_AT, history=history)
    state = load_training(path)
    assert state.network is not first and state.step == SAVED_AT
    resumed = fit(
        state.network, state.optimizer, x, t, batch_size=20, iters=STEPS, seed=1,
        resume=Resume(state.history, state.step),
    )  # fmt: skip

    assert np.array_equal(resumed.losses, whole.losses)
    for name, param in straight.params.items():
        assert np.array_equal(state.network.params[name], param), name
    for mine, theirs in zip(running_stats(state.network), running_stats(straight), strict=True):
        assert np.array_equal(mine, theirs)


def test_a_sequential_keeps_its_running_statistics_and_dropout_state(tmp_path):
    rng = np.random.default_rng(0)
    net = Sequential(
        [
            Affine(rng.standard_normal((16, 8)), np.zeros(8)),
            BatchNormalization(np.ones(8), np.zeros(8)),
            Relu(),
            Dropout(0.3, seed=5),
            Affine(rng.standard_normal((8, 4)), np.zeros(4)),
        ]
    )
    x, t = data((16,))
    fit(net, Adam(), x, t, batch_size=20, iters=4)
    state = load_training(save_training(tmp_path / "seq.npz", net, meta={"note": "mine"}))
    assert state.optimizer is None and state.history is None
    assert state.meta["note"] == "mine"
    loaded = state.network
    for name, param in net.params.items():
        assert np.array_equal(loaded.params[name], param)
    assert np.array_equal(
        loaded.layers["BatchNorm1"].running_var, net.layers["BatchNorm1"].running_var
    )
    assert np.array_equal(
        loaded.layers["Dropout1"].rng.random(5), net.layers["Dropout1"].rng.random(5)
    )


def test_meta_may_not_overwrite_what_save_training_writes(tmp_path):
    with pytest.raises(ArgumentError, match="meta may not hold"):
        save_training(tmp_path / "x.npz", extend_net(), meta={"network": {}})


def test_a_history_that_does_not_match_the_step_is_refused(tmp_path):
    net, optimizer = extend_net(), Adam()
    x, t = data((16,))
    history = fit(net, optimizer, x, t, batch_size=20, iters=3)
    path = save_training(tmp_path / "x.npz", net, optimizer, step=2, history=history)
    with pytest.raises(CheckpointError, match="its history holds 3 losses for 2 steps"):
        load_training(path)


def test_a_description_of_a_far_larger_network_is_refused_before_one_is_built(
    tmp_path, monkeypatch
):
    saved = load_checkpoint(save_training(tmp_path / "small.npz", extend_net(), Adam()))
    meta = {**saved.meta, "network": {**saved.meta["network"], "hidden_size_list": [10**7]}}
    hostile = tmp_path / "hostile.npz"
    save_checkpoint(hostile, saved.params, optimizer_state=saved.optimizer_state, meta=meta)

    def never(config):
        raise AssertionError("a network was built before the description was checked")

    monkeypatch.setattr("chainrule.networks.network_from_config", never)
    with pytest.raises(CheckpointError, match="do not match the network") as refused:
        load_training(hostile)
    assert str(hostile) in str(refused.value) and "\n" not in str(refused.value)
    assert "(16, 10000000)" in str(refused.value)


def test_a_loaded_checkpoint_describing_a_larger_network_is_not_built(tmp_path, monkeypatch):
    saved = load_checkpoint(save_training(tmp_path / "small.npz", extend_net()))
    meta = {**saved.meta, "network": {**saved.meta["network"], "hidden_size_list": [10**7, 10]}}
    hostile = tmp_path / "hostile.npz"
    save_checkpoint(hostile, saved.params, meta=meta)
    checkpoint = load_checkpoint(hostile)  # the file format alone: no description check

    def never(config):
        raise AssertionError("a network was built before the description was checked")

    monkeypatch.setattr("chainrule.networks.network_from_config", never)
    with pytest.raises(CheckpointError, match="does not match the network") as refused:
        restore_network(checkpoint, str(hostile))
    assert str(hostile) in str(refused.value) and "(16, 10000000)" in str(refused.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_size_list", "wide", "description.network.hidden_size_list must be a list"),
        ("input_size", 2**40, "description.network.input_size must be an integer from 1"),
        ("network", "Transformer", "description.network.network must be one of"),
    ],
)
def test_a_description_that_breaks_the_schema_is_one_line_naming_the_file(
    tmp_path, field, value, message
):
    saved = load_checkpoint(save_training(tmp_path / "small.npz", extend_net()))
    meta = {**saved.meta, "network": {**saved.meta["network"], field: value}}
    bad = tmp_path / "bad.npz"
    save_checkpoint(bad, saved.params, meta=meta)
    with pytest.raises(CheckpointError, match=message) as refused:
        load_training(bad)
    assert str(refused.value).startswith(f"{bad}: ") and "\n" not in str(refused.value)


def test_the_shapes_a_sequential_description_implies_are_its_own():
    rng = np.random.default_rng(0)
    net = Sequential(
        [
            Convolution(rng.standard_normal((3, 1, 3, 3)), np.zeros(3), stride=1, pad=1),
            Relu(),
            Pooling(2, 2, stride=2),
            Affine(rng.standard_normal((48, 8)), np.zeros(8)),
            BatchNormalization(np.ones(8), np.zeros(8)),
            Affine(rng.standard_normal((8, 4)), np.zeros(4)),
        ]
    )
    check_description({"network": net.config()}, "seq.npz")
    assert parameter_shapes(net.config()) == {k: v.shape for k, v in net.params.items()}
