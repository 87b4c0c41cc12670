"""Training loop: mini-batch gradient descent with evaluation, reporting through callbacks.

The library never prints: ``fit`` calls each of its callbacks (:class:`Callback`):
``on_step(step, loss)`` after every step, ``on_evaluate(record)`` after every evaluation
(each epoch's end, and the last step) and ``on_checkpoint(step, history)`` when a
checkpoint is due; the command line turns those into a progress bar, lines and files.
``Trainer`` is the book's class on top of ``fit``; its ``verbose=True`` (the book's
default) prints the book's lines, the one exception.

Data order is a pure function of ``(seed, epoch)``: each epoch draws its batches from its
own generator, so a run resumed at any step sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from chainrule.blas import check_threads
from chainrule.errors import ArgumentError, DataError, ShapeError, TrainingError
from chainrule.losses import SoftmaxWithLoss, class_indices
from chainrule.optim import OPTIMIZERS, Optimizer
from chainrule.validation import check_real

__all__ = [
    "SAMPLINGS",
    "Callback",
    "Evaluation",
    "History",
    "LambdaCallback",
    "Resume",
    "Trainer",
    "epoch_batches",
    "evaluate",
    "fit",
    "iters_per_epoch",
]

# "shuffle": each epoch visits every sample at most once (without replacement);
# "with-replacement": the book's np.random.choice, each batch drawn independently.
SAMPLINGS = ("shuffle", "with-replacement")
_EVAL_CHUNK = 10_000  # samples per forward pass when evaluating: bounds the memory used
_EVAL_LAYER_BYTES = 8 * 2**20  # and fewer, so that no layer's output exceeds this (8 MB)


@dataclass
class Evaluation:
    """Loss and accuracy on the training and test data after ``step`` steps."""

    epoch: float
    step: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None = None
    test_accuracy: float | None = None


@dataclass
class History:
    """What a run measured: the training loss of every step and every evaluation."""

    losses: list[float] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"losses": self.losses, "evaluations": [asdict(e) for e in self.evaluations]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(list(data["losses"]), [Evaluation(**e) for e in data["evaluations"]])


def iters_per_epoch(train_size: int, batch_size: int) -> int:
    """Steps in one epoch: ``train_size // batch_size``, at least 1 (the book's choice)."""
    return max(train_size // batch_size, 1)


def evaluate(network: Any, x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy (without weight decay) and accuracy of ``network`` on ``(x, t)``."""
    if len(x) == 0:
        raise ShapeError("evaluate: the data set is empty")
    loss_layer = SoftmaxWithLoss()
    total_loss, correct = 0.0, 0
    chunk = _EVAL_CHUNK
    widest = getattr(network, "widest_layer", None)  # values per sample of its largest array
    if widest is not None:
        row_bytes = np.dtype(getattr(network, "dtype", np.float64)).itemsize * widest
        chunk = max(1, min(chunk, _EVAL_LAYER_BYTES // row_bytes))
    predict = getattr(network, "predict_fast", network.predict)  # the same scores, faster
    for start in range(0, len(x), chunk):
        labels = t[start : start + chunk]
        # The parameters of a diverging run overflow the scores: the loss is then not
        # finite, which is what the record says (and fit stops at its next check).
        with np.errstate(over="ignore", invalid="ignore"):
            scores = predict(x[start : start + chunk])
            total_loss += float(loss_layer.forward(scores, labels)) * len(scores)
        label_ids = class_indices(labels, scores.shape[1])
        correct += int(np.count_nonzero(scores.argmax(axis=1) == label_ids))
    return total_loss / len(x), correct / len(x)


def epoch_batches(
    train_size: int, batch_size: int, steps: int, seed: int, epoch: int, sampling: str
) -> np.ndarray:
    """The (steps, batch_size) sample indices of epoch ``epoch``: what :func:`fit` trains
    on, a pure function of its arguments (so a benchmark or a test can replay it)."""
    rng = np.random.default_rng([seed, epoch])
    if sampling == "with-replacement":
        return rng.integers(0, train_size, (steps, batch_size))
    return rng.permutation(train_size)[: steps * batch_size].reshape(steps, batch_size)


def _check_data(x: np.ndarray, t: np.ndarray, name: str) -> None:
    """Matching lengths, not empty, and no NaN or infinity (which would poison every step)."""
    if len(x) != len(t):
        raise ShapeError(f"{name}: {len(x)} samples but {len(t)} labels")
    if len(x) == 0:
        raise ShapeError(f"{name}: the data set is empty")
    check_real(name, "samples", x)
    if x.dtype.kind == "f":
        finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"{name}: sample {first} holds NaN or infinity "
                f"({int((~finite).sum())} of {len(x)} samples do)"
            )


class Callback:
    """What :func:`fit` reports to; a subclass overrides the methods it needs (each one
    here does nothing, and fit skips it).

    Any object with some of these methods serves as well. ``checkpoint_every``: the steps
    between two ``on_checkpoint`` calls (None: each epoch's end); the last step always
    has one.
    """

    checkpoint_every: int | None = None

    def on_step(self, step: int, loss: float) -> None:
        """After step ``step`` (counted from 1) and its evaluation, if it had one; ``loss``
        is the step's training loss, taken before its update."""

    def on_evaluate(self, record: Evaluation) -> None:
        """After each evaluation (each epoch's end, and the last step)."""

    def on_checkpoint(self, step: int, history: History) -> None:
        """When a checkpoint is due, after ``on_step``; the parameters are finite."""


class LambdaCallback(Callback):
    """A :class:`Callback` made of functions: ``LambdaCallback(on_step=f)`` calls
    ``f(step, loss)`` after every step (the keywords of :class:`Trainer`)."""

    def __init__(
        self,
        *,
        on_step: Callable[[int, float], None] | None = None,
        on_evaluate: Callable[[Evaluation], None] | None = None,
        on_checkpoint: Callable[[int, History], None] | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        # An instance attribute shadows the no-op method, so fit calls only what is given.
        for name, function in [
            ("on_step", on_step),
            ("on_evaluate", on_evaluate),
            ("on_checkpoint", on_checkpoint),
        ]:
            if function is not None:
                setattr(self, name, function)
        self.checkpoint_every = checkpoint_every


@dataclass
class Resume:
    """Where :func:`fit` starts: after ``step`` steps of a run, appending to ``history``
    (the saved run's). ``Resume(history)`` starts a new run at step 0 that records into
    ``history``, which the caller keeps even when training stops with an error."""

    history: History
    step: int = 0


def fit(
    network: Any,
    optimizer: Any,
    x_train: np.ndarray,
    t_train: np.ndarray,
    x_test: np.ndarray | None = None,
    t_test: np.ndarray | None = None,
    *,
    batch_size: int = 100,
    epochs: int | None = None,
    iters: int | None = None,
    seed: int = 0,
    sampling: str = "shuffle",
    evaluate_sample_num: int | None = None,
    threads: int | None = None,
    resume: Resume | None = None,
    callbacks: Sequence[Callback] = (),
) -> History:
    """Train ``network`` with ``optimizer`` for ``epochs`` epochs or ``iters`` steps.

    Each step takes a mini-batch and calls ``optimizer.train_step``: the loss and
    gradients of ``network.loss_and_gradient`` (for chainrule's networks, by their engine
    step, :mod:`chainrule.engine`, whose gradient buffers no user holds), then
    ``optimizer.update(network.params, grads)``; plain ``SGD`` does both in the engine's
    one pass, the same step up to rounding. An optimiser without ``train_step`` (any
    object with the book's ``update``) is used the same way.
    Evaluation runs at each epoch's end and after the last step, on all the training data
    (or its first ``evaluate_sample_num`` samples) and on the test data if given, in
    chunks small enough to bound the memory it takes.
    ``callbacks`` (:class:`Callback`) hear of each step, evaluation and checkpoint.
    ``threads`` pins the number of threads that share the products of the training step
    of chainrule's networks (by default the step chooses it by timing; it changes the
    speed, never the numbers: see :mod:`chainrule.blas`; its former name ``blas_threads``
    is no longer taken).
    To resume, pass ``resume=Resume(history, step)`` of the saved run. Each batch is
    copied into the same two arrays, step after step: a callback that keeps what a layer
    saved of its input (``Affine.x``, ``SoftmaxWithLoss.t``) past its step must copy it.

    Raises TrainingError, before the update, when a step's loss is not finite: the
    parameters and the last checkpoint are then still those of the last good step.
    """
    _check_data(x_train, t_train, "training data")
    if x_test is not None:
        _check_data(x_test, t_test, "test data")
    schedule = _Schedule.of(len(x_train), batch_size, epochs, iters, seed, sampling)
    if threads is not None:
        check_threads(threads)
    resume = resume if resume is not None else Resume(History())
    loop = _Loop(
        network,
        optimizer,
        schedule,
        (x_train, t_train),
        (x_test, t_test),
        evaluate_sample_num,
        resume.history,
        callbacks,
    )
    fast_step = getattr(network, "fast_step", None)  # chainrule's engine (its networks)
    if fast_step is not None and threads is not None:
        fast_step.pin_threads(threads)
    # BLAS stays on one thread and the step's thread count stays set from step to step
    # (evaluation included), and the library's own count comes back when training ends.
    with fast_step.tuner.hold() if fast_step is not None else nullcontext():
        for step in range(resume.step, schedule.total_steps):
            loop.run_step(step)
    return resume.history


@dataclass(frozen=True)
class _Schedule:
    """Which samples each step of a run trains on (see :func:`epoch_batches`)."""

    train_size: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    seed: int
    sampling: str

    @classmethod
    def of(
        cls,
        train_size: int,
        batch_size: int,
        epochs: int | None,
        iters: int | None,
        seed: int,
        sampling: str,
    ) -> _Schedule:
        """:func:`fit`'s settings, checked; a batch is at most the whole training set."""
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if (epochs is None) == (iters is None):
            raise ValueError("give exactly one of epochs and iters")
        batch_size = min(batch_size, train_size)
        steps_per_epoch = iters_per_epoch(train_size, batch_size)
        total_steps = iters if iters is not None else epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"nothing to train: {total_steps} steps")
        return cls(train_size, batch_size, steps_per_epoch, total_steps, seed, sampling)

    def batches(self, epoch: int) -> np.ndarray:
        """The (steps_per_epoch, batch_size) sample indices of epoch ``epoch``."""
        return epoch_batches(
            self.train_size, self.batch_size, self.steps_per_epoch, self.seed, epoch, self.sampling
        )


def _hooks(callbacks: Sequence[Any], name: str) -> list[Callable[..., None]]:
    """Each callback's method ``name``, leaving out those it lacks or left as Callback's."""
    hooks = []
    for callback in callbacks:
        method = getattr(callback, name, None)
        if method is not None and getattr(method, "__func__", None) is not getattr(Callback, name):
            hooks.append(method)
    return hooks


class _Loop:
    """The steps of one :func:`fit` run: batch, train step, evaluation, callbacks."""

    def __init__(
        self,
        network: Any,
        optimizer: Any,
        schedule: _Schedule,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray | None, np.ndarray | None],
        evaluate_sample_num: int | None,
        history: History,
        callbacks: Sequence[Any],
    ) -> None:
        self.network, self.schedule, self.history = network, schedule, history
        (self.x_train, self.t_train), (self.x_test, self.t_test) = train, test
        # Evaluated on the first evaluate_sample_num training samples (None: all)
        self.eval_x = self.x_train[:evaluate_sample_num]
        self.eval_t = self.t_train[:evaluate_sample_num]
        fast_step = getattr(network, "fast_step", None)
        # The engine's own buffers: nothing outside this step holds them.
        self.model = fast_step if fast_step is not None else network
        self.train_step = getattr(optimizer, "train_step", None)
        if self.train_step is None:  # the book's interface: update() only
            self.train_step = partial(Optimizer.train_step, optimizer)
        self.batch_indices: np.ndarray | None = None
        # The batch is copied into the same two arrays every step, cheaper than a new
        # array from x_train[index] for a small network.
        shape = (schedule.batch_size,)
        self.batch_x = np.empty(shape + self.x_train.shape[1:], self.x_train.dtype)
        self.batch_t = np.empty(shape + self.t_train.shape[1:], self.t_train.dtype)
        self.step_hooks = _hooks(callbacks, "on_step")
        self.evaluate_hooks = _hooks(callbacks, "on_evaluate")
        self.checkpoints = [  # (on_checkpoint, its callback's checkpoint_every)
            (hook, getattr(callback, "checkpoint_every", None))
            for callback in callbacks
            for hook in _hooks([callback], "on_checkpoint")
        ]

    def run_step(self, step: int) -> None:
        """Step ``step`` (from 0) and what follows it: evaluation, callbacks, checkpoint."""
        loss = self._train(step)
        self.history.losses.append(loss)
        done = step + 1
        last = done == self.schedule.total_steps
        if done % self.schedule.steps_per_epoch == 0 or last:
            self._evaluate(done)
        # After the step's evaluation: an on_step that stops training (Ctrl-C) must
        # not leave the history of a resumed run without that epoch's record.
        for hook in self.step_hooks:
            hook(done, loss)
        due = [
            on_checkpoint
            for on_checkpoint, every in self.checkpoints
            if last or done % (every or self.schedule.steps_per_epoch) == 0
        ]
        if due:
            self._check_parameters(done)
            for on_checkpoint in due:
                on_checkpoint(done, self.history)

    def _train(self, step: int) -> float:
        """Train on step ``step``'s batch; its loss, or TrainingError if not finite."""
        epoch, position = divmod(step, self.schedule.steps_per_epoch)
        if self.batch_indices is None or position == 0:
            self.batch_indices = self.schedule.batches(epoch)
        # The indices are in range by construction, and mode="clip" lets take() write
        # straight into the batch arrays.
        index = self.batch_indices[position]
        x = np.take(self.x_train, index, axis=0, out=self.batch_x, mode="clip")
        t = np.take(self.t_train, index, axis=0, out=self.batch_t, mode="clip")
        loss = self.train_step(self.model, self.network.params, x, t)  # updates if finite
        if not math.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss} at step {step + 1}: the learning rate "
                "is probably too high for this network (try a smaller --lr)"
            )
        return loss

    def _evaluate(self, step: int) -> None:
        """Evaluate after ``step`` steps: record it and tell the callbacks."""
        train_loss, train_acc = evaluate(self.network, self.eval_x, self.eval_t)
        record = Evaluation(step / self.schedule.steps_per_epoch, step, train_loss, train_acc)
        if self.x_test is not None:
            record.test_loss, record.test_accuracy = evaluate(
                self.network, self.x_test, self.t_test
            )
        self.history.evaluations.append(record)
        for hook in self.evaluate_hooks:
            hook(record)

    def _check_parameters(self, step: int) -> None:
        """TrainingError unless every parameter is finite: the update may have overflowed
        though the step's loss was finite, and such parameters must never replace the
        last good checkpoint."""
        if not all(np.isfinite(p).all() for p in self.network.params.values()):
            raise TrainingError(
                f"the parameters stopped being finite at step {step}: the learning rate "
                "is probably too high for this network (try a smaller --lr)"
            )


class Trainer:
    """The book's ``Trainer``: trains ``network`` and keeps the book's result lists.

    ``network`` is any object with the book's interface: ``params``, ``gradient(x, t)``,
    ``loss(x, t)``, ``accuracy(x, t)`` and ``predict(x)``; the book's own classes and a
    learner's train as chainrule's do. Where the network offers one pass for both,
    ``loss_and_gradient`` (chainrule's networks), training uses it.

    ``optimizer`` is a name in any letter case (``"SGD"``, ``"sgd"``, ``"Momentum"``,
    ``"Nesterov"``, ``"AdaGrad"``, ``"RMSprop"``, ``"Adam"``) with ``optimizer_param``,
    built from the classes ``optimizer_classes`` names (chainrule's; the book's runner
    gives the book's). ``evaluate_sample_num_per_epoch`` limits each epoch's evaluation
    to the first that many training and test samples, as the book's.

    ``sampling`` chooses the loop:

    - ``"shuffle"`` (default) and ``"with-replacement"``: :func:`fit`'s, batches drawn
      from ``seed``, a step's loss taken before its update, evaluation at each epoch's end;
      ``callbacks`` (``on_step``, ``on_evaluate``, ``on_checkpoint``, ``checkpoint_every``)
      are passed on to :func:`fit` as a :class:`LambdaCallback`;
    - ``"book"``: the book's own, step by step (:meth:`train_step`): each batch drawn by
      ``np.random.choice`` from NumPy's global generator, ``gradient``, the update, then
      ``loss`` on the batch (after the update: what the book's ``train_loss_list`` holds),
      and ``accuracy`` after the first step of each epoch. A seeded script then trains
      exactly as the book's ``Trainer`` does. Callbacks: ``on_step`` and ``on_evaluate``
      (whose record has no loss: NaN).

    ``verbose`` (the book's default, True) prints what the book's prints: a line per epoch,
    ``=== epoch:1, train acc:0.9, test acc:0.89 ===``, then the accuracy on the whole test
    set under ``=============== Final Test Accuracy ===============``; and its line per
    step, ``train loss:2.30…``, with ``sampling="book"``, else a progress bar on stderr
    where tqdm is installed and stderr is a terminal. This is the one place chainrule
    prints: the book's explicit opt-in. The library otherwise reports through callbacks,
    and the command line does not use it.
    """

    optimizer_classes: Mapping[str, type] = OPTIMIZERS

    def __init__(
        self,
        network: Any,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: dict[str, float] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        seed: int = 0,
        sampling: str = "shuffle",
        **callbacks: Callable[..., None],
    ) -> None:
        if sampling not in (*SAMPLINGS, "book"):
            raise ArgumentError(
                f"sampling must be one of {', '.join(SAMPLINGS)}, book; got {sampling!r}"
            )
        if sampling == "book" and set(callbacks) - {"on_step", "on_evaluate"}:
            unknown = ", ".join(sorted(set(callbacks) - {"on_step", "on_evaluate"}))
            raise ArgumentError(f"sampling='book' takes on_step and on_evaluate, not {unknown}")
        self.network = network
        self.x_train, self.t_train, self.x_test, self.t_test = x_train, t_train, x_test, t_test
        self.epochs, self.batch_size = epochs, mini_batch_size
        self.optimizer = self._make_optimizer(optimizer, optimizer_param)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose, self.seed, self.sampling, self.callbacks = verbose, seed, sampling, callbacks
        self.history = History()
        # The book's counters (its epoch is counted in steps of train_size / batch_size)
        self.train_size = len(x_train)
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = self.current_epoch = 0

    def _make_optimizer(self, name: str, param: dict[str, float] | None) -> Any:
        if not isinstance(name, str) or name.lower() not in self.optimizer_classes:
            names = ", ".join(self.optimizer_classes)
            raise ArgumentError(f"unknown optimizer {name!r}; valid names: {names}")
        return self.optimizer_classes[name.lower()](**({"lr": 0.01} if param is None else param))

    @property
    def train_loss_list(self) -> list[float]:
        return self.history.losses

    @property
    def train_acc_list(self) -> list[float]:
        return [e.train_accuracy for e in self.history.evaluations]

    @property
    def test_acc_list(self) -> list[float]:
        return [e.test_accuracy for e in self.history.evaluations]

    def train(self) -> History:
        """Run all epochs; return the history (also kept in ``self.history``)."""
        if self.sampling == "book":
            return self._train_as_the_book()
        x_test, t_test = self._evaluation_samples(self.x_test, self.t_test)
        steps = self.epochs * iters_per_epoch(len(self.x_train), self.batch_size)
        network = self.network
        if not hasattr(network, "loss_and_gradient"):
            network = _BookInterface(network)
        with _BookProgress(steps if self.verbose else 0) as progress:
            callbacks = {**self.callbacks}
            threads = callbacks.pop("threads", None)  # passed on to fit, as the rest
            fit(
                network,
                self.optimizer,
                self.x_train,
                self.t_train,
                x_test,
                t_test,
                batch_size=self.batch_size,
                epochs=self.epochs,
                seed=self.seed,
                sampling=self.sampling,
                evaluate_sample_num=self.evaluate_sample_num_per_epoch,
                threads=threads,
                resume=Resume(self.history),
                callbacks=[progress, LambdaCallback(**callbacks)],
            )
            if self.verbose:
                test_acc = self.history.evaluations[-1].test_accuracy
                if len(x_test) < len(self.x_test):  # the last evaluation saw a sample only
                    test_acc = evaluate(network, self.x_test, self.t_test)[1]
                progress.say(_FINAL_LINE)
                progress.say(f"test acc:{test_acc}")
        return self.history

    def _evaluation_samples(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = self.evaluate_sample_num_per_epoch
        return (x, t) if count is None else (x[:count], t[:count])

    def _train_as_the_book(self) -> History:
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print(_FINAL_LINE)
            print(f"test acc:{test_acc}")
        return self.history

    def train_step(self) -> None:
        """One step of the book's loop (see ``sampling="book"``)."""
        index = np.random.choice(self.train_size, self.batch_size)  # noqa: NPY002 (the book's)
        x_batch, t_batch = self.x_train[index], self.t_train[index]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = self.network.loss(x_batch, t_batch)
        self.history.losses.append(loss)
        if self.verbose:
            print(f"train loss:{loss}")
        if "on_step" in self.callbacks:
            self.callbacks["on_step"](self.current_iter + 1, float(loss))
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            train_acc = self.network.accuracy(*self._evaluation_samples(self.x_train, self.t_train))
            test_acc = self.network.accuracy(*self._evaluation_samples(self.x_test, self.t_test))
            record = Evaluation(self.current_epoch, self.current_iter + 1, math.nan, train_acc)
            record.test_accuracy = test_acc
            self.history.evaluations.append(record)
            if self.verbose:
                print(_epoch_line(record))
            if "on_evaluate" in self.callbacks:
                self.callbacks["on_evaluate"](record)
        self.current_iter += 1


_FINAL_LINE = "=============== Final Test Accuracy ==============="


def _epoch_line(record: Evaluation) -> str:
    return (
        f"=== epoch:{record.epoch:g}, train acc:{record.train_accuracy}, "
        f"test acc:{record.test_accuracy} ==="
    )


class _BookInterface:
    """A network with only the book's methods, seen through those :func:`fit` calls."""

    _CHUNK = 100  # images per forward pass in evaluation, as the book's accuracy takes them

    def __init__(self, network: Any) -> None:
        self.network, self.params = network, network.params

    def loss_and_gradient(self, x: np.ndarray, t: np.ndarray) -> tuple[Any, dict[str, Any]]:
        # The book's code overflows once a run diverges; the loss is then not finite, and
        # fit says so (chainrule's own engine keeps its forward pass to the same rule).
        with np.errstate(over="ignore", invalid="ignore"):
            grads = self.network.gradient(x, t)
            return self.network.loss(x, t), grads

    def predict(self, x: np.ndarray) -> np.ndarray:
        chunks = range(0, len(x), self._CHUNK)
        return np.concatenate([self.network.predict(x[i : i + self._CHUNK]) for i in chunks])


class _BookProgress(Callback):
    """What a verbose Trainer prints: lines on stdout, and a progress bar of ``steps``
    steps on stderr while training (tqdm's, shown only on a terminal). ``steps=0``: quiet.
    As a :func:`fit` callback: the bar moves each step, a line each epoch."""

    def __init__(self, steps: int) -> None:
        self.quiet, self.bar = steps == 0, None
        if not self.quiet:
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is optional (the "progress" extra): lines only
                return
            # disable=None: no bar unless stderr is a terminal (not in a log or a test)
            self.bar = tqdm(total=steps, unit="step", leave=False, disable=None)

    def on_step(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            self.bar.update()

    def on_evaluate(self, record: Evaluation) -> None:
        self.say(_epoch_line(record))

    def say(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)  # above the bar, which stays at the bottom
        else:
            print(line)

    def __enter__(self) -> _BookProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
