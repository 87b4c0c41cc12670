# ruff: noqa: NPY002 (the book's Trainer draws its batches from NumPy's global generator)
"""chainrule.train.Trainer trains any network with the book's interface, and its
``sampling="book"`` is the book's loop step by step."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.errors import ArgumentError
from chainrule.losses import softmax
from chainrule.optim import SGD, Adam
from chainrule.train import Trainer


class SoftmaxRegression:
    """A learner's own network: only the book's interface (no loss_and_gradient)."""

    def __init__(self, inputs: int, classes: int) -> None:
        self.params = {"W": 0.01 * np.random.randn(inputs, classes), "b": np.zeros(classes)}

    def predict(self, x):
        return x @ self.params["W"] + self.params["b"]

    def loss(self, x, t):
        p = softmax(self.predict(x))
        return -np.mean(np.log(p[np.arange(len(x)), t]))

    def gradient(self, x, t):
        dy = softmax(self.predict(x))
        dy[np.arange(len(x)), t] -= 1
        dy /= len(x)
        return {"W": x.T @ dy, "b": dy.sum(axis=0)}

    def accuracy(self, x, t):
        return float(np.mean(self.predict(x).argmax(axis=1) == t))


def blobs(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    return rng.standard_normal((n, 5)) + 3 * np.eye(3, 5)[t], t


@pytest.mark.parametrize("sampling", ["shuffle", "with-replacement", "book"])
def test_a_network_with_only_the_books_methods_trains(sampling):
    # chainrule's Trainer called network.loss_and_gradient: AttributeError on this one
    x, t = blobs()
    np.random.seed(0)
    network = SoftmaxRegression(5, 3)
    trainer = Trainer(network, x, t, x, t, epochs=5, mini_batch_size=30, optimizer="sgd",
                      optimizer_param={"lr": 0.5}, verbose=False, sampling=sampling)  # fmt: skip
    trainer.train()
    assert len(trainer.train_loss_list) == 50
    assert trainer.train_loss_list[-1] < trainer.train_loss_list[0] / 2
    assert trainer.test_acc_list[-1] > 0.9


def test_book_sampling_is_the_books_loop(capsys):
    x, t = blobs()
    np.random.seed(7)
    trainer = Trainer(SoftmaxRegression(5, 3), x, t, x[:60], t[:60], epochs=2,
                      mini_batch_size=100, optimizer="SGD", optimizer_param={"lr": 0.3},
                      evaluate_sample_num_per_epoch=50, sampling="book")  # fmt: skip
    trainer.train()
    # the same steps written out: batches by np.random.choice, the loss after the update,
    # accuracies of the first 50 samples after the first step of each epoch (steps 1, 4)
    np.random.seed(7)
    network = SoftmaxRegression(5, 3)
    losses, accuracies = [], []
    for step in range(6):
        index = np.random.choice(300, 100)
        grads = network.gradient(x[index], t[index])
        for key in network.params:
            network.params[key] -= 0.3 * grads[key]
        losses.append(network.loss(x[index], t[index]))
        if step % 3 == 0:
            accuracies.append((network.accuracy(x[:50], t[:50]), network.accuracy(x[:50], t[:50])))
    assert trainer.train_loss_list == losses
    assert list(zip(trainer.train_acc_list, trainer.test_acc_list)) == accuracies
    assert trainer.current_iter == trainer.max_iter == 6 and trainer.current_epoch == 2
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"train loss:{losses[0]}"
    assert (
        printed[1] == f"=== epoch:1, train acc:{accuracies[0][0]}, test acc:{accuracies[0][1]} ==="
    )
    assert printed[-2:] == [
        "=============== Final Test Accuracy ===============",
        f"test acc:{network.accuracy(x[:60], t[:60])}",
    ]
    assert len(printed) == 6 + 2 + 2


def test_optimizer_param_given_empty_means_the_classes_defaults():
    x, t = blobs(30)
    adam = Trainer(SoftmaxRegression(5, 3), x, t, x, t, optimizer="Adam", optimizer_param={})
    assert isinstance(adam.optimizer, Adam) and adam.optimizer.lr == 0.001
    assert Trainer(SoftmaxRegression(5, 3), x, t, x, t).optimizer.lr == 0.01  # the book's
    assert isinstance(Trainer(SoftmaxRegression(5, 3), x, t, x, t).optimizer, SGD)


def test_the_books_runner_trains_with_the_books_optimisers():
    from chainrule.book import optimizer
    from chainrule.book.trainer import Trainer as BookTrainer

    x, t = blobs(30)
    trainer = BookTrainer(SoftmaxRegression(5, 3), x, t, x, t, optimizer="ADAM")
    assert type(trainer.optimizer) is optimizer.Adam and trainer.sampling == "book"


def test_bad_trainer_arguments_are_argument_errors():
    x, t = blobs(30)
    with pytest.raises(ArgumentError, match="sampling must be one of"):
        Trainer(SoftmaxRegression(5, 3), x, t, x, t, sampling="random")
    with pytest.raises(ArgumentError, match="unknown optimizer 'adamw'"):
        Trainer(SoftmaxRegression(5, 3), x, t, x, t, optimizer="adamw")
    with pytest.raises(ArgumentError, match="on_step and on_evaluate, not on_checkpoint"):
        Trainer(SoftmaxRegression(5, 3), x, t, x, t, sampling="book", on_checkpoint=print)
