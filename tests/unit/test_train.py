"""The training loop: learning, reproducibility, sampling, resuming, divergence, Trainer."""

import re

import numpy as np
import pytest

from chainrule import MultiLayerNet, TwoLayerNet
from chainrule.checkpoint import load_checkpoint, save_checkpoint
from chainrule.errors import ArgumentError, ShapeError, TrainingError
from chainrule.optim import SGD, Adam, Momentum, make_optimizer
from chainrule.train import (
    History,
    LambdaCallback,
    Resume,
    Trainer,
    epoch_batches,
    evaluate,
    fit,
    iters_per_epoch,
)


def blobs(n=300, classes=3, dim=8, seed=0):
    """Gaussian clusters around well-separated centres: learnable to ~100% accuracy."""
    centres = np.random.default_rng(1234).standard_normal((classes, dim)) * 4
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return (centres[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def test_fit_learns_a_separable_problem():
    x, t = blobs()
    xt, tt = blobs(seed=1)
    net = TwoLayerNet(8, 16, 3, weight_init_std=0.1, seed=0)
    history = fit(net, SGD(lr=0.1), x, t, xt, tt, batch_size=30, epochs=10)
    assert len(history.losses) == 10 * 10
    assert np.mean(history.losses[-10:]) < np.mean(history.losses[:10]) / 5
    assert history.evaluations[-1].test_accuracy > 0.95
    assert [e.epoch for e in history.evaluations] == list(range(1, 11))


def test_same_seed_same_numbers_other_seed_other_numbers():
    x, t = blobs()

    def run(seed):
        net = TwoLayerNet(8, 6, 3, weight_init_std=0.1, seed=0)
        return fit(net, SGD(0.1), x, t, batch_size=32, iters=40, seed=seed).losses

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_shuffle_visits_each_sample_at_most_once_per_epoch():
    batches = epoch_batches(103, 10, iters_per_epoch(103, 10), seed=0, epoch=3, sampling="shuffle")
    assert batches.shape == (10, 10)
    assert len(np.unique(batches)) == 100
    other = epoch_batches(103, 10, 10, seed=0, epoch=4, sampling="shuffle")
    assert not np.array_equal(batches, other)


def test_with_replacement_sampling_repeats_samples():
    batches = epoch_batches(50, 50, 1, seed=0, epoch=0, sampling="with-replacement")
    # 50 draws from 50 with replacement: repeats are certain beyond doubt (P(none) = 50!/50^50)
    assert len(np.unique(batches)) < 50


def test_evaluation_each_epoch_and_after_the_last_step():
    x, t = blobs(n=100)
    net = TwoLayerNet(8, 4, 3, seed=0)
    history = fit(net, SGD(0.01), x, t, batch_size=10, iters=25)
    assert [e.step for e in history.evaluations] == [10, 20, 25]
    assert history.evaluations[-1].test_accuracy is None
    _, accuracy = evaluate(net, x, t)
    assert accuracy == pytest.approx(net.accuracy(x, t))
    assert history.evaluations[-1].train_accuracy == accuracy


def test_evaluate_in_chunks_matches_one_pass(monkeypatch):
    x, t = blobs(n=95)
    net = TwoLayerNet(8, 4, 3, seed=0, dtype=np.float64)
    whole = evaluate(net, x, t)
    monkeypatch.setattr("chainrule.train._EVAL_CHUNK", 10)
    chunked = evaluate(net, x, t)
    assert chunked[1] == whole[1]
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    assert whole[0] == pytest.approx(float(net.last_layer.forward(net.predict(x), t)), rel=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_resume_is_bit_for_bit(tmp_path, optimizer):
    x, t = blobs()
    settings = dict(batch_size=32, iters=37, seed=3)

    def new_run():
        net = MultiLayerNet(8, [7, 5], 3, seed=1)
        return net, make_optimizer(optimizer, lr=0.01)

    net, opt = new_run()
    straight = fit(net, opt, x, t, **settings)

    class Killed(Exception):
        pass

    net, opt = new_run()

    def save_then_die(step, history):
        save_checkpoint(
            tmp_path / "run.npz",
            net.params,
            optimizer_state=opt.state_dict(),
            step=step,
            meta={"history": history.to_dict()},
        )
        if step == 20:
            raise Killed  # as if the process were killed right after this checkpoint

    with pytest.raises(Killed):
        saving = LambdaCallback(on_checkpoint=save_then_die, checkpoint_every=10)
        fit(net, opt, x, t, callbacks=[saving], **settings)

    checkpoint = load_checkpoint(tmp_path / "run.npz")
    net, opt = new_run()
    net.load_params(checkpoint.params)
    opt.load_state_dict(checkpoint.optimizer_state)
    resumed = fit(
        net,
        opt,
        x,
        t,
        resume=Resume(History.from_dict(checkpoint.meta["history"]), checkpoint.step),
        **settings,
    )
    assert resumed.losses == straight.losses
    assert resumed.evaluations == straight.evaluations

    net_straight, opt_straight = new_run()
    fit(net_straight, opt_straight, x, t, **settings)
    for key in net.params:
        np.testing.assert_array_equal(net.params[key], net_straight.params[key])


@pytest.mark.parametrize("lr", [1e3, 1e30])
def test_divergence_stops_and_no_checkpoint_holds_non_finite_values(lr):
    x, t = blobs()
    net = TwoLayerNet(8, 16, 3, seed=0)
    checkpoints = []

    def on_checkpoint(step, history):
        assert all(np.isfinite(p).all() for p in net.params.values())
        checkpoints.append(step)

    with pytest.raises(TrainingError, match=r"at step (\d+).*learning rate") as info:
        fit(
            net,
            SGD(lr=lr),
            x,
            t,
            batch_size=30,
            epochs=50,
            callbacks=[LambdaCallback(on_checkpoint=on_checkpoint, checkpoint_every=1)],
        )
    failed_step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    assert checkpoints == list(range(1, failed_step))


@pytest.mark.parametrize(
    ("checkpoint_every", "expected"),
    [(None, [10, 20, 25]), (7, [7, 14, 21, 25])],  # 10 steps an epoch; the last step too
)
def test_checkpoint_schedule(checkpoint_every, expected):
    x, t = blobs(n=100)
    seen = []
    fit(
        TwoLayerNet(8, 4, 3, seed=0),
        SGD(0.01),
        x,
        t,
        batch_size=10,
        iters=25,
        callbacks=[
            LambdaCallback(
                on_checkpoint=lambda step, history: seen.append(step),
                checkpoint_every=checkpoint_every,
            )
        ],
    )
    assert seen == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(epochs=1, iters=5), ValueError),
        (dict(), ValueError),
        (dict(epochs=1, sampling="bogus"), ValueError),
        (dict(epochs=1, batch_size=0), ValueError),
    ],
)
def test_bad_settings(kwargs, error):
    x, t = blobs(n=20)
    with pytest.raises(error):
        fit(TwoLayerNet(8, 4, 3), SGD(), x, t, **kwargs)


def test_mismatched_or_empty_data():
    x, t = blobs(n=20)
    with pytest.raises(ShapeError, match="20 samples but 19 labels"):
        fit(TwoLayerNet(8, 4, 3), SGD(), x, t[:-1], epochs=1)
    with pytest.raises(ShapeError, match="empty"):
        fit(TwoLayerNet(8, 4, 3), SGD(), x[:0], t[:0], epochs=1)


def test_books_trainer():
    x, t = blobs()
    xt, tt = blobs(seed=1)
    net = MultiLayerNet(8, [10], 3, seed=0)
    trainer = Trainer(
        net,
        x,
        t,
        xt,
        tt,
        epochs=3,
        mini_batch_size=50,
        optimizer="Adam",
        optimizer_param={"lr": 0.01},
        evaluate_sample_num_per_epoch=100,
    )
    trainer.train()
    assert isinstance(trainer.optimizer, Adam)
    assert len(trainer.train_loss_list) == 3 * 6
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == 3
    assert trainer.test_acc_list[-1] > 0.9


def test_trainer_passes_callbacks_and_book_sampling():
    x, t = blobs(n=60)
    records = []
    trainer = Trainer(
        TwoLayerNet(8, 4, 3),
        x,
        t,
        x,
        t,
        epochs=2,
        mini_batch_size=20,
        optimizer="momentum",
        verbose=False,
        sampling="with-replacement",
        on_evaluate=records.append,
    )
    trainer.train()
    assert isinstance(trainer.optimizer, Momentum)
    assert len(records) == 2


def test_verbose_trainer_prints_as_the_books_does(capsys):
    x, t = blobs(n=200)
    xt, tt = blobs(n=400, seed=1)
    seen = []
    trainer = Trainer(
        MultiLayerNet(8, [10], 3, seed=0), x, t, xt, tt, epochs=3, mini_batch_size=50,
        optimizer="adam", optimizer_param={"lr": 0.01}, evaluate_sample_num_per_epoch=100,
        on_evaluate=seen.append,
    )  # fmt: skip
    trainer.train()
    out = capsys.readouterr().out.splitlines()
    # A line per epoch with the accuracies of the first 100 training and test samples
    # (the book's evaluate_sample_num_per_epoch), then the accuracy on all 400 test samples.
    assert len(out) == 5
    for epoch, (line, train_acc, test_acc) in enumerate(
        zip(out, trainer.train_acc_list, trainer.test_acc_list), start=1
    ):
        assert line == f"=== epoch:{epoch}, train acc:{train_acc}, test acc:{test_acc} ==="
        assert train_acc * 100 == round(train_acc * 100) and test_acc * 100 == round(test_acc * 100)
    assert out[3] == "=============== Final Test Accuracy ==============="
    final = float(re.fullmatch(r"test acc:(\S+)", out[4]).group(1))
    assert final == evaluate(trainer.network, xt, tt)[1]
    assert len(seen) == 3  # the caller's callbacks still run


def test_quiet_trainer_and_fit_print_nothing(capsys):
    x, t = blobs(n=100)
    Trainer(TwoLayerNet(8, 4, 3), x, t, x, t, epochs=2, verbose=False).train()
    fit(TwoLayerNet(8, 4, 3), SGD(), x, t, x, t, epochs=2)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["sgd", "SGD", "Adam", "ADAM", "adagrad", "RMSprop", "Nesterov"])
def test_trainer_takes_optimizer_names_in_any_case(name):
    x, t = blobs(n=60)
    trainer = Trainer(TwoLayerNet(8, 4, 3), x, t, x, t, epochs=1, optimizer=name, verbose=False)
    assert trainer.optimizer.name == name.lower()


def test_nan_or_inf_in_the_data_is_found_before_training():
    from chainrule.errors import DataError

    x, t = blobs(n=50)
    x[17, 3] = np.nan
    x[30, 0] = np.inf
    net = TwoLayerNet(8, 4, 3, seed=0)
    before = net.params["W1"].copy()
    with pytest.raises(DataError, match=r"training data: sample 17 holds NaN .*2 of 50"):
        fit(net, SGD(), x, t, epochs=1)
    np.testing.assert_array_equal(net.params["W1"], before)
    x_test, t_test = blobs(n=40, seed=1)
    x_test[30, 0] = -np.inf
    with pytest.raises(DataError, match=r"test data: sample 30 .*1 of 40"):
        fit(net, SGD(), *blobs(n=20), x_test, t_test, epochs=1)


@pytest.mark.parametrize("kind", ["fully connected", "convolutional"])
def test_fit_pins_the_steps_threads_on_one_blas_thread_and_gives_them_back(kind):
    from chainrule.blas import blas_controllers, worker_count
    from chainrule.networks import SimpleConvNet

    libraries = blas_controllers()
    if not libraries or libraries[0].num_threads < 2:
        pytest.skip("needs a BLAS library that threadpoolctl controls, with 2+ threads")
    before = [lib.num_threads for lib in libraries]
    rng = np.random.default_rng(0)
    if kind == "convolutional":
        net = SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 3}, 6, 3, seed=0)
        x = rng.random((20, 1, 8, 8))
    else:
        net = TwoLayerNet(8, 16, 3, seed=0)
        x = rng.random((20, 8)).astype(np.float32)
    t = rng.integers(0, 3, 20)
    seen = []
    on_step = lambda step, loss: seen.append((libraries[0].num_threads, worker_count()))  # noqa: E731
    fit(
        net,
        SGD(lr=0.1),
        x,
        t,
        batch_size=5,
        iters=3,
        threads=3,
        callbacks=[LambdaCallback(on_step=on_step)],
    )
    assert seen == [(1, 3)] * 3  # three threads share the products, BLAS on one ...
    assert [lib.num_threads for lib in libraries] == before  # ... and given back after
    assert net.fast_step.tuner.fixed == 3 and worker_count() == 1
    fit(net, SGD(lr=0.1), x, t, batch_size=5, iters=1, threads=2)
    assert net.fast_step.tuner.fixed == 2


def test_fit_refuses_a_thread_count_that_is_not_one():
    x, t = blobs(n=20)
    for wrong in (0, -1):
        with pytest.raises(ArgumentError, match="threads"):
            fit(TwoLayerNet(8, 4, 3, seed=0), SGD(), x, t, iters=1, threads=wrong)


def test_plain_sgd_takes_the_fused_step_and_a_subclass_its_own_update():
    x, t = blobs(n=100)
    plain = SGD(lr=0.1)
    fit(TwoLayerNet(8, 4, 3, seed=0), plain, x, t, batch_size=10, iters=7)
    assert plain.t == 7  # the fused step counts its steps as update() does

    class Clipped(SGD):
        def update(self, params, grads):
            self.calls = getattr(self, "calls", 0) + 1
            super().update(params, {k: np.clip(g, -0.01, 0.01) for k, g in grads.items()})

    clipped = Clipped(lr=0.1)
    fit(TwoLayerNet(8, 4, 3, seed=0), clipped, x, t, batch_size=10, iters=7)
    assert clipped.calls == clipped.t == 7


def test_each_callback_has_its_own_checkpoint_schedule_and_any_object_serves():
    from chainrule.train import Callback

    x, t = blobs(n=100)
    seen = []

    class Every7(Callback):
        checkpoint_every = 7

        def on_checkpoint(self, step, history):
            seen.append(("every 7", step))

    class StepsOnly:  # no base class: only the methods it has are called
        def on_step(self, step, loss):
            seen.append(("step", step))

    epochly = LambdaCallback(on_checkpoint=lambda step, history: seen.append(("epoch", step)))
    fit(
        TwoLayerNet(8, 4, 3, seed=0),
        SGD(0.01),
        x,
        t,
        batch_size=10,
        iters=25,
        callbacks=[Every7(), StepsOnly(), epochly],
    )
    assert [s for kind, s in seen if kind == "step"] == list(range(1, 26))
    assert [s for kind, s in seen if kind == "every 7"] == [7, 14, 21, 25]
    assert [s for kind, s in seen if kind == "epoch"] == [10, 20, 25]


def test_trainer_passes_on_checkpoint_keywords_to_fit():
    x, t = blobs(n=60)
    seen = []
    trainer = Trainer(
        TwoLayerNet(8, 4, 3),
        x,
        t,
        x,
        t,
        epochs=2,
        mini_batch_size=20,
        verbose=False,
        checkpoint_every=2,
        on_checkpoint=lambda step, history: seen.append(step),
    )
    trainer.train()
    assert seen == [2, 4, 6]  # 3 steps an epoch, 6 in all


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_an_update_that_overflows_float32_ends_in_a_training_error_not_a_warning(optimizer):
    # lr·gradient beyond float32's range makes the parameters huge or infinite; the next
    # evaluation and step overflow (with warnings as errors, as in the suite's config).
    x, t = blobs(n=300)
    net = TwoLayerNet(8, 16, 3, seed=0, dtype=np.float32)
    checkpoints = []
    with pytest.raises(TrainingError, match="learning rate"):
        fit(
            net,
            make_optimizer(optimizer, lr=1e30),
            x,
            t,
            x,
            t,
            batch_size=300,
            iters=3,
            callbacks=[LambdaCallback(on_checkpoint=lambda step, h: checkpoints.append(step))],
        )
    assert len(checkpoints) < 3


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_a_step_size_beyond_float32_ends_in_a_training_error_not_a_warning(optimizer):
    # lr = 1e38 fits float32 (largest ~3.4e38), but Adam's bias-corrected step is ten
    # times larger: the step size itself overflows when it meets the float32 arrays.
    x, t = blobs(n=300)
    net = TwoLayerNet(8, 16, 3, seed=0, dtype=np.float32)
    with pytest.raises(TrainingError, match="learning rate"):
        fit(net, make_optimizer(optimizer, lr=1e38), x, t, batch_size=300, iters=3)
