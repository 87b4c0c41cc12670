"""Tests for chainrule.optim: convergence, in-place updates, torch parity, state round trips."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.errors import CheckpointError, ShapeError
from chainrule.optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    make_optimizer,
)

# f(p) = 0.5 * sum(a * (p - c)**2) over two parameters, minimum at p = c.
CURVATURE = {
    "W": np.array([[0.5, 1.0, 2.0], [3.0, 4.0, 5.0]]),
    "b": np.array([1.0, 0.7, 2.5, 4.0]),
}
MINIMUM = {
    "W": np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]),
    "b": np.array([0.3, -0.3, 2.0, -4.0]),
}


def quadratic_grads(params: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
    """Gradient of the quadratic, a * (p - c), written into ``out``."""
    for key, p in params.items():
        np.multiply(CURVATURE[key], p - MINIMUM[key], out=out[key])


def start(dtype: type = np.float64) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parameters at zero (distance up to 4 from the minimum) and gradient arrays."""
    params = {k: np.zeros(v.shape, dtype=dtype) for k, v in MINIMUM.items()}
    grads = {k: np.empty_like(v) for k, v in params.items()}
    return params, grads


def distance(params: dict[str, np.ndarray]) -> float:
    """Largest |p - c| over all entries."""
    return max(float(np.max(np.abs(p - MINIMUM[k]))) for k, p in params.items())


# (optimiser, steps): learning rates chosen so each converges well within the steps.
CONVERGING = [
    (lambda: SGD(lr=0.1), 500),
    (lambda: Momentum(lr=0.05, momentum=0.9), 500),
    (lambda: Nesterov(lr=0.05, momentum=0.9), 500),
    (lambda: AdaGrad(lr=1.0), 500),
    (lambda: RMSprop(lr=0.01, decay_rate=0.99), 1000),
    (lambda: Adam(lr=0.05), 1000),
]
CONVERGING_IDS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]

# One instance of each, for tests that do not care about the learning rate.
ALL = [
    lambda: SGD(lr=0.1),
    lambda: Momentum(lr=0.05, momentum=0.8),
    lambda: Nesterov(lr=0.05, momentum=0.8),
    lambda: AdaGrad(lr=0.3),
    lambda: RMSprop(lr=0.02, decay_rate=0.9),
    lambda: Adam(lr=0.05, beta1=0.8, beta2=0.99),
]


# --------------------------------------------------------------------------- convergence


@pytest.mark.parametrize(("make", "steps"), CONVERGING, ids=CONVERGING_IDS)
def test_converges_on_quadratic_float64(make, steps):
    opt = make()
    params, grads = start(np.float64)
    assert distance(params) == 4.0
    for _ in range(steps):
        quadratic_grads(params, grads)
        opt.update(params, grads)
    assert distance(params) < 1e-6
    assert opt.t == steps


@pytest.mark.parametrize(("make", "steps"), CONVERGING, ids=CONVERGING_IDS)
def test_converges_on_quadratic_float32_and_keeps_dtype(make, steps):
    opt = make()
    params, grads = start(np.float32)
    for _ in range(steps):
        quadratic_grads(params, grads)
        opt.update(params, grads)
    # float32 RMSprop/Adam jitter at ~lr * (float32 noise in sqrt(h)); 5e-3 of a start at 4.
    assert distance(params) < 5e-3
    for p in params.values():
        assert p.dtype == np.float32
    for buf in opt._buffers:
        for arr in getattr(opt, buf).values():
            assert arr.dtype == np.float32


# --------------------------------------------------------------------------- in place


@pytest.mark.parametrize("make", ALL, ids=CONVERGING_IDS)
def test_updates_in_place(make):
    opt = make()
    params, grads = start()
    before = dict(params)  # same array objects
    views = {k: v[...] for k, v in params.items()}  # layers hold views like these
    for _ in range(3):
        quadratic_grads(params, grads)
        opt.update(params, grads)
    for key in params:
        assert params[key] is before[key]
        assert np.shares_memory(views[key], params[key])
        assert np.array_equal(views[key], params[key])
        assert np.any(params[key] != 0.0)  # it did move


@pytest.mark.parametrize("make", ALL, ids=CONVERGING_IDS)
def test_buffers_allocated_once(make):
    opt = make()
    params, grads = start()
    quadratic_grads(params, grads)
    opt.update(params, grads)
    ids = {buf: {k: id(a) for k, a in getattr(opt, buf).items()} for buf in opt._buffers}
    scratch = {k: id(a) for k, a in opt._scratch.items()}
    for _ in range(3):
        quadratic_grads(params, grads)
        opt.update(params, grads)
    assert ids == {buf: {k: id(a) for k, a in getattr(opt, buf).items()} for buf in opt._buffers}
    assert scratch == {k: id(a) for k, a in opt._scratch.items()}


@pytest.mark.parametrize("make", ALL, ids=CONVERGING_IDS)
def test_step_allocates_no_parameter_sized_temporaries(make):
    # NumPy reports its data buffers to tracemalloc: a per-step temporary of a
    # 1M-element float64 parameter would show as an 8 MB peak.
    opt = make()
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((1000, 1000))}
    grads = {"W": rng.standard_normal((1000, 1000))}
    opt.update(params, grads)  # first step allocates the state buffers
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.update(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --------------------------------------------------------------------------- torch parity

STEPS = 5


def gradient_sequence(shape=(3, 4), steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(steps)]


def run_ours(opt: Optimizer, p0: np.ndarray, gs: list[np.ndarray]) -> list[np.ndarray]:
    """Parameter after each step."""
    p = p0.copy()
    out = []
    for g in gs:
        opt.update({"W": p}, {"W": g})
        out.append(p.copy())
    return out


def run_torch(torch, cls, p0, gs, **kwargs):
    """Same with torch.optim.<cls> (single-tensor code path, float64)."""
    t = torch.tensor(p0.copy(), dtype=torch.float64, requires_grad=True)
    opt = cls([t], foreach=False, **kwargs)
    out = []
    for g in gs:
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(t.detach().numpy().copy())
    return out, opt, t


TORCH_CASES = [
    ("sgd", lambda: SGD(lr=0.1), "SGD", {"lr": 0.1}),
    ("momentum", lambda: Momentum(lr=0.1, momentum=0.9), "SGD", {"lr": 0.1, "momentum": 0.9}),
    (
        "nesterov",
        lambda: Nesterov(lr=0.1, momentum=0.9),
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    ),
    ("adagrad", lambda: AdaGrad(lr=0.1), "Adagrad", {"lr": 0.1}),
    ("rmsprop", lambda: RMSprop(lr=0.01), "RMSprop", {"lr": 0.01, "alpha": 0.99}),
    (
        "rmsprop-nondefault",
        lambda: RMSprop(lr=0.03, decay_rate=0.9, eps=1e-6),
        "RMSprop",
        {"lr": 0.03, "alpha": 0.9, "eps": 1e-6},
    ),
    ("adam", lambda: Adam(), "Adam", {}),
    (
        "adam-nondefault",
        lambda: Adam(lr=0.02, beta1=0.5, beta2=0.9, eps=1e-6),
        "Adam",
        {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-6},
    ),
]


@pytest.mark.parametrize(
    ("label", "make", "torch_name", "kwargs"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES]
)
def test_matches_torch_first_steps(label, make, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    p0, gs = gradient_sequence()
    ours = run_ours(make(), p0, gs)
    theirs, _, _ = run_torch(torch, getattr(torch.optim, torch_name), p0, gs, **kwargs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True), 1):
        # Not bit-exact (torch fuses multiply-adds, and Momentum/Nesterov fold lr in a
        # different place), but equal to a few ulps after every step.
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_velocity_is_minus_lr_times_torch_buffer(nesterov):
    # The documented transformation: our v == -lr * torch's momentum_buffer.
    torch = pytest.importorskip("torch")
    lr, mu = 0.1, 0.9
    p0, gs = gradient_sequence()
    ours = (Nesterov if nesterov else Momentum)(lr=lr, momentum=mu)
    run_ours(ours, p0, gs)
    _, topt, t = run_torch(torch, torch.optim.SGD, p0, gs, lr=lr, momentum=mu, nesterov=nesterov)
    buf = topt.state[t]["momentum_buffer"].numpy()
    np.testing.assert_allclose(ours.v["W"], -lr * buf, rtol=1e-12, atol=1e-14)


def test_adam_state_matches_torch():
    torch = pytest.importorskip("torch")
    p0, gs = gradient_sequence()
    ours = Adam(lr=0.01)
    run_ours(ours, p0, gs)
    _, topt, t = run_torch(torch, torch.optim.Adam, p0, gs, lr=0.01)
    state = topt.state[t]
    np.testing.assert_allclose(ours.m["W"], state["exp_avg"].numpy(), rtol=1e-14)
    np.testing.assert_allclose(ours.v["W"], state["exp_avg_sq"].numpy(), rtol=1e-14)
    assert ours.t == ours.iter == int(state["step"]) == STEPS


# --------------------------------------------------------------------------- book parity
# Reference implementations transcribed from the book's common/optimizer.py.


def book_momentum(p, gs, lr, mu):
    v = np.zeros_like(p)
    for g in gs:
        v = mu * v - lr * g
        p += v
    return p


def book_nesterov(p, gs, lr, mu):
    v = np.zeros_like(p)
    for g in gs:
        v *= mu
        v -= lr * g
        p += mu * mu * v
        p -= (1 + mu) * lr * g
    return p


def book_adagrad(p, gs, lr):
    h = np.zeros_like(p)
    for g in gs:
        h += g * g
        p -= lr * g / (np.sqrt(h) + 1e-7)
    return p


def book_rmsprop(p, gs, lr, rho):
    h = np.zeros_like(p)
    for g in gs:
        h *= rho
        h += (1 - rho) * g * g
        p -= lr * g / (np.sqrt(h) + 1e-7)
    return p


def book_adam(p, gs, lr, b1, b2):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(gs, 1):
        lr_t = lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g**2 - v)
        p -= lr_t * m / (np.sqrt(v) + 1e-7)
    return p


def test_momentum_equals_the_book_bit_for_bit():
    p0, gs = gradient_sequence()
    expected = book_momentum(p0.copy(), gs, 0.1, 0.9)
    assert np.array_equal(run_ours(Momentum(lr=0.1, momentum=0.9), p0, gs)[-1], expected)


def test_sgd_equals_the_book_bit_for_bit():
    p0, gs = gradient_sequence()
    p = p0.copy()
    for g in gs:
        p -= 0.1 * g
    assert np.array_equal(run_ours(SGD(lr=0.1), p0, gs)[-1], p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_on_large_arrays_equals_the_book_bit_for_bit(dtype):
    # Arrays past SGD's block size are updated a block at a time: a last block cut short,
    # a transposed (non-contiguous) parameter, and a small one beside them.
    rng = np.random.default_rng(3)
    params = {
        "W": rng.standard_normal((700, 300)).astype(dtype),  # 210,000 values: 3.2 blocks
        "Wt": rng.standard_normal((400, 500)).astype(dtype).T,
        "b": rng.standard_normal(300).astype(dtype),
    }
    expected = {key: p.copy() for key, p in params.items()}
    optimizer = SGD(lr=0.03)
    for _ in range(3):
        grads = {key: rng.standard_normal(p.shape).astype(dtype) for key, p in params.items()}
        optimizer.update(params, grads)
        for key, p in expected.items():
            p -= 0.03 * grads[key]
    for key, p in params.items():
        assert p.dtype == dtype
        assert np.array_equal(p, expected[key]), key


@pytest.mark.parametrize(
    ("make", "book"),
    [
        (lambda: AdaGrad(lr=0.1, eps=1e-7), lambda p, gs: book_adagrad(p, gs, 0.1)),
        (
            lambda: RMSprop(lr=0.01, decay_rate=0.9, eps=1e-7),
            lambda p, gs: book_rmsprop(p, gs, 0.01, 0.9),
        ),
    ],
    ids=["adagrad", "rmsprop"],
)
def test_adagrad_rmsprop_with_eps_1e7_equal_the_book(make, book):
    # Documented: the book's versions are these with eps=1e-7, up to rounding.
    p0, gs = gradient_sequence()
    np.testing.assert_allclose(run_ours(make(), p0, gs)[-1], book(p0.copy(), gs), rtol=1e-13)


def test_nesterov_first_step_differs_from_the_book_as_documented():
    # Documented: from v = 0 the book moves -(1+m+m**2)*lr*g, this (and torch) -(1+m)*lr*g.
    lr, mu = 0.1, 0.9
    p0, gs = gradient_sequence(steps=1)
    ours = run_ours(Nesterov(lr=lr, momentum=mu), p0, gs)[0]
    np.testing.assert_allclose(ours, p0 - (1 + mu) * lr * gs[0], rtol=1e-14)
    book = book_nesterov(p0.copy(), gs, lr, mu)
    np.testing.assert_allclose(book, p0 - (1 + mu + mu * mu) * lr * gs[0], rtol=1e-14)


def test_adam_equals_the_book_with_step_dependent_eps():
    # Documented: the book's Adam at step t is this rule with eps_t = 1e-7 / sqrt(1-beta2**t).
    p0, gs = gradient_sequence(steps=1)
    b2 = 0.999
    ours = run_ours(Adam(lr=0.01, eps=1e-7 / math.sqrt(1 - b2)), p0, gs)[-1]
    np.testing.assert_allclose(ours, book_adam(p0.copy(), gs, 0.01, 0.9, b2), rtol=1e-13)


# --------------------------------------------------------------------------- state dict


def run_quadratic(opt, params, grads, steps):
    for _ in range(steps):
        quadratic_grads(params, grads)
        opt.update(params, grads)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", ALL, ids=CONVERGING_IDS)
def test_state_dict_resume_is_bit_identical(make, dtype):
    k = 7
    opt = make()
    params, grads = start(dtype)
    run_quadratic(opt, params, grads, k)
    state = opt.state_dict()
    saved = {key: p.copy() for key, p in params.items()}
    run_quadratic(opt, params, grads, k)

    # A fresh optimiser of the same class with *default* hyperparameters: the state
    # must restore lr, betas ... too.
    resumed = type(opt)()
    resumed.load_state_dict(state)
    params2 = {key: p.copy() for key, p in saved.items()}
    grads2 = {key: np.empty_like(p) for key, p in params2.items()}
    run_quadratic(resumed, params2, grads2, k)
    for key in params:
        assert params[key].tobytes() == params2[key].tobytes()
    assert resumed.t == opt.t == 2 * k
    assert resumed.hyperparams == opt.hyperparams


@settings(max_examples=25, deadline=None)
@given(
    index=st.integers(0, len(ALL) - 1),
    before=st.integers(0, 6),
    after=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_state_dict_resume_property(index, before, after, seed):
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal((2, 3)) for _ in range(before + after)]
    p = rng.standard_normal((2, 3))
    opt = ALL[index]()
    for g in gs[:before]:
        opt.update({"W": p}, {"W": g})
    state, p_saved = opt.state_dict(), p.copy()
    for g in gs[before:]:
        opt.update({"W": p}, {"W": g})
    resumed = type(opt)()
    resumed.load_state_dict(state)
    for g in gs[before:]:
        resumed.update({"W": p_saved}, {"W": g})
    assert p.tobytes() == p_saved.tobytes()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: SGD(), {"lr", "t"}),
        (lambda: Momentum(), {"lr", "momentum", "t", "v/W", "v/b"}),
        (lambda: Nesterov(), {"lr", "momentum", "t", "v/W", "v/b"}),
        (lambda: AdaGrad(), {"lr", "eps", "t", "h/W", "h/b"}),
        (lambda: RMSprop(), {"lr", "decay_rate", "eps", "t", "h/W", "h/b"}),
        (lambda: Adam(), {"lr", "beta1", "beta2", "eps", "t", "m/W", "m/b", "v/W", "v/b"}),
    ],
    ids=CONVERGING_IDS,
)
def test_state_dict_layout(make, expected):
    opt = make()
    params, grads = start(np.float32)
    run_quadratic(opt, params, grads, 2)
    state = opt.state_dict()
    assert set(state) == expected
    assert state["t"].shape == () and state["t"].dtype == np.int64 and int(state["t"]) == 2
    assert state["lr"].shape == () and state["lr"].dtype == np.float64
    for name, arr in state.items():
        assert isinstance(arr, np.ndarray)
        assert arr.dtype != object
        if "/" in name:
            assert arr.shape == params[name.split("/")[1]].shape
            assert arr.dtype == np.float32


def test_state_dict_is_a_copy():
    opt = Adam()
    params, grads = start()
    run_quadratic(opt, params, grads, 2)
    state = opt.state_dict()
    m = state["m/W"].copy()
    run_quadratic(opt, params, grads, 2)
    assert np.array_equal(state["m/W"], m)
    # ... and loading copies too: mutating the dict afterwards does not reach the optimiser.
    fresh = Adam()
    fresh.load_state_dict(state)
    state["m/W"][...] = 99.0
    assert not np.any(fresh.m["W"] == 99.0)


def test_load_state_of_another_optimiser_is_refused():
    adam = Adam()
    params, grads = start()
    run_quadratic(adam, params, grads, 1)
    sgd = SGD(lr=0.5)
    with pytest.raises(CheckpointError, match=r"unknown keys \['beta1'"):
        sgd.load_state_dict(adam.state_dict())
    assert sgd.lr == 0.5  # unchanged
    momentum = Momentum()
    state = adam.state_dict()
    state["momentum"] = np.array(0.9)
    with pytest.raises(CheckpointError, match="unknown keys") as info:
        momentum.load_state_dict(state)
    assert "m/W" in str(info.value)


def test_load_state_validates_and_leaves_optimiser_unchanged():
    opt = Adam(lr=0.01)
    params, grads = start()
    run_quadratic(opt, params, grads, 3)
    good = opt.state_dict()
    before = opt.state_dict()

    bad = dict(good, lr=np.array(-1.0))
    with pytest.raises(CheckpointError, match="lr"):
        opt.load_state_dict(bad)
    bad = dict(good, beta2=np.array(1.0))
    with pytest.raises(CheckpointError, match="beta2"):
        opt.load_state_dict(bad)
    bad = dict(good, t=np.array(1.5))
    with pytest.raises(CheckpointError, match="'t'"):
        opt.load_state_dict(bad)
    bad = dict(good, t=np.array(-1))
    with pytest.raises(CheckpointError, match="'t'"):
        opt.load_state_dict(bad)
    bad = {k: v for k, v in good.items() if k != "v/b"}
    with pytest.raises(CheckpointError, match="different parameters"):
        opt.load_state_dict(bad)
    bad = dict(good, **{"v/W": np.zeros((7,))})
    with pytest.raises(CheckpointError, match="shape"):
        opt.load_state_dict(bad)
    bad = dict(good, **{"m/W": np.zeros((2, 3), dtype=np.int64)})
    with pytest.raises(CheckpointError, match="floating"):
        opt.load_state_dict(bad)

    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        assert np.array_equal(after[key], before[key])


def test_loaded_state_with_wrong_shape_raises_on_update():
    opt = Momentum()
    opt.load_state_dict({"lr": 0.01, "momentum": 0.9, "t": np.array(3), "v/W": np.zeros((5,))})
    params, grads = start()
    with pytest.raises(ShapeError, match=r"'v/W'.*\(5,\).*\(2, 3\)"):
        opt.update(params, grads)
    assert np.all(params["W"] == 0.0)


def test_loaded_state_is_cast_to_the_param_dtype():
    opt64 = Adam()
    params, grads = start(np.float64)
    run_quadratic(opt64, params, grads, 2)
    opt32 = Adam()
    opt32.load_state_dict(opt64.state_dict())
    params32, grads32 = start(np.float32)
    run_quadratic(opt32, params32, grads32, 1)
    assert opt32.m["W"].dtype == np.float32 and opt32.v["b"].dtype == np.float32


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("make", ALL, ids=CONVERGING_IDS)
def test_grad_shape_mismatch_names_key_and_shapes_and_changes_nothing(make):
    opt = make()
    params, _ = start()
    grads = {"W": np.ones((2, 3)), "b": np.ones((1, 4))}  # would broadcast silently
    with pytest.raises(ShapeError, match=r"grads\['b'\] has shape \(1, 4\).*params\['b'\].*\(4,\)"):
        opt.update(params, grads)
    assert np.all(params["W"] == 0.0)  # W comes first and must be untouched
    assert opt.t == 0


def test_grad_key_mismatch():
    params, _ = start()
    with pytest.raises(ShapeError, match=r"missing from grads \['b'\], not in params \['c'\]"):
        SGD().update(params, {"W": np.ones((2, 3)), "c": np.ones(4)})


def test_param_types_checked():
    with pytest.raises(TypeError, match="floating"):
        SGD().update({"W": np.zeros(3, dtype=np.int64)}, {"W": np.ones(3)})
    with pytest.raises(TypeError, match="floating"):
        SGD().update({"W": [0.0, 0.0]}, {"W": np.ones(2)})
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        SGD().update({"W": ro}, {"W": np.ones(3)})
    with pytest.raises(TypeError, match="grads"):
        SGD().update({"W": np.zeros(2)}, {"W": [1.0, 1.0]})


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (SGD, {"lr": 0.0}, "lr"),
        (SGD, {"lr": -0.1}, "lr"),
        (SGD, {"lr": float("nan")}, "lr"),
        (SGD, {"lr": float("inf")}, "lr"),
        (SGD, {"lr": True}, "lr"),
        (SGD, {"lr": "0.1"}, "lr"),
        (Momentum, {"momentum": 1.0}, "momentum"),
        (Momentum, {"momentum": -0.1}, "momentum"),
        (Nesterov, {"momentum": 1.5}, "momentum"),
        (Nesterov, {"lr": 0}, "lr"),
        (AdaGrad, {"eps": 0.0}, "eps"),
        (RMSprop, {"decay_rate": 1.0}, "decay_rate"),
        (RMSprop, {"eps": -1e-8}, "eps"),
        (Adam, {"beta1": 1.0}, "beta1"),
        (Adam, {"beta2": -0.5}, "beta2"),
        (Adam, {"beta2": float("nan")}, "beta2"),
        (Adam, {"lr": -1}, "lr"),
    ],
)
def test_hyperparameters_validated(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_book_defaults():
    assert SGD().lr == 0.01
    assert (Momentum().lr, Momentum().momentum) == (0.01, 0.9)
    assert (Nesterov().lr, Nesterov().momentum) == (0.01, 0.9)
    assert AdaGrad().lr == 0.01
    assert (RMSprop().lr, RMSprop().decay_rate) == (0.01, 0.99)
    assert (Adam().lr, Adam().beta1, Adam().beta2) == (0.001, 0.9, 0.999)
    # torch's eps defaults (the book hard-codes 1e-7)
    assert (AdaGrad().eps, RMSprop().eps, Adam().eps) == (1e-10, 1e-8, 1e-8)
    # numpy scalars are accepted and stored as floats
    assert SGD(lr=np.float32(0.5)).lr == 0.5


def test_repr_and_hyperparams():
    opt = Adam(lr=0.01)
    assert repr(opt) == "Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08)"
    assert opt.hyperparams == {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


# --------------------------------------------------------------------------- factory


def test_optimizers_registry():
    assert {
        "sgd": SGD,
        "momentum": Momentum,
        "nesterov": Nesterov,
        "adagrad": AdaGrad,
        "rmsprop": RMSprop,
        "adam": Adam,
    } == OPTIMIZERS


@pytest.mark.parametrize(
    "name", ["sgd", "SGD", "Momentum", "NESTEROV", "AdaGrad", "rmsProp", "Adam"]
)
def test_make_optimizer_case_insensitive(name):
    opt = make_optimizer(name, lr=0.5)
    assert isinstance(opt, OPTIMIZERS[name.lower()])
    assert opt.lr == 0.5


def test_make_optimizer_passes_hyperparameters():
    opt = make_optimizer("adam", lr=0.002, beta1=0.8, beta2=0.99)
    assert opt.hyperparams == {"lr": 0.002, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8}
    assert isinstance(make_optimizer("sgd"), SGD)


def test_make_optimizer_errors():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamw'.*sgd, momentum, nesterov"):
        make_optimizer("adamw")
    with pytest.raises(TypeError, match="SGD takes lr"):
        make_optimizer("sgd", momentum=0.9)
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer("momentum", momentum=2.0)
    with pytest.raises(TypeError, match="str"):
        make_optimizer(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- numbers as params
# The book's chapter 6 toy problem keeps plain floats in its params dict.

ALL_OPTIMIZERS = [
    lambda: SGD(lr=0.95),
    lambda: Momentum(lr=0.1),
    lambda: Nesterov(lr=0.1),
    lambda: AdaGrad(lr=1.5),
    lambda: RMSprop(lr=0.1),
    lambda: Adam(lr=0.3),
]


def toy_gradient(x, y):
    """∇(x²/20 + y²), as Python floats when x and y are."""
    return x / 10.0, 2.0 * y


@pytest.mark.parametrize("make", ALL_OPTIMIZERS)
def test_python_floats_are_updated_as_one_element_arrays_are(make):
    params = {"x": -7.0, "y": 2.0}
    arrays = {"x": np.array([-7.0]), "y": np.array([2.0])}
    on_floats, on_arrays = make(), make()
    for _ in range(30):
        grads = dict(zip("xy", toy_gradient(params["x"], params["y"])))
        on_floats.update(params, grads)
        on_arrays.update(arrays, dict(zip("xy", toy_gradient(arrays["x"], arrays["y"]))))
        assert type(params["x"]) is float and type(params["y"]) is float  # rebound, not boxed
    assert params == {"x": arrays["x"][0], "y": arrays["y"][0]}  # the same numbers, bit for bit


def test_zero_d_arrays_are_updated_in_place_and_numpy_scalars_keep_their_type():
    x = np.array(-7.0)
    params = {"x": x, "y": np.float32(2.0), "z": 3, "W": np.ones(2)}
    W = params["W"]
    Momentum(lr=0.5).update(params, {"x": 1.0, "y": np.float32(1.0), "z": 1, "W": np.ones(2)})
    assert params["x"] is x and x == -7.5
    assert type(params["y"]) is np.float32 and params["y"] == 1.5
    assert type(params["z"]) is float and params["z"] == 2.5  # an int parameter becomes a float
    assert params["W"] is W and W.tolist() == [0.5, 0.5]


def test_numbers_keep_optimizer_state_and_resume():
    def run(opt, params, steps):
        for _ in range(steps):
            opt.update(params, dict(zip("xy", toy_gradient(params["x"], params["y"]))))

    straight, params = Adam(lr=0.3), {"x": -7.0, "y": 2.0}
    run(straight, params, 20)
    first, resumed = Adam(lr=0.3), {"x": -7.0, "y": 2.0}
    run(first, resumed, 8)
    state = first.state_dict()
    assert state["m/x"].shape == () and state["v/y"].dtype == np.float64
    second = Adam()
    second.load_state_dict(state)
    run(second, resumed, 12)
    assert resumed == params


def test_numbers_that_are_not_real_are_refused_and_nothing_changes():
    params = {"x": -7.0, "y": "2.0"}
    with pytest.raises(TypeError, match=r"params\['y'\] must be a floating-point numpy array or "
                       "a number, got str"):  # fmt: skip
        SGD().update(params, {"x": 1.0, "y": 1.0})
    assert params == {"x": -7.0, "y": "2.0"}
    with pytest.raises(TypeError, match=r"params\['x'\] .* got bool"):
        SGD().update({"x": True}, {"x": 1.0})
    with pytest.raises(TypeError, match=r"grads\['x'\] must be a numpy array or a number, got str"):
        SGD().update({"x": 1.0}, {"x": "1"})
    with pytest.raises(ShapeError, match=r"grads\['W'\] has shape \(\) but params\['W'\] has "
                       r"shape \(2,\)"):  # fmt: skip
        SGD().update({"W": np.zeros(2)}, {"W": 1.0})
    with pytest.raises(ShapeError, match=r"grads\['x'\] has shape \(2,\)"):
        SGD().update({"x": 1.0}, {"x": np.ones(2)})


class _Model:
    """A training step that returns a fixed loss and gradient, and notes fused calls."""

    def __init__(self, loss, fused=False):
        self.loss, self.fused_calls = loss, []
        if fused:
            self.sgd_step = lambda x, t, lr: self.fused_calls.append(lr) or self.loss

    def loss_and_gradient(self, x, t):
        return self.loss, {"w": np.array([1.0, -2.0])}


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_train_step_updates_only_when_the_loss_is_finite(name):
    params = {"w": np.array([0.5, 0.5])}
    opt = make_optimizer(name, lr=0.1)
    assert opt.train_step(_Model(1.25), params, None, None) == 1.25
    assert opt.t == 1 and not np.array_equal(params["w"], [0.5, 0.5])
    moved = params["w"].copy()
    assert math.isnan(opt.train_step(_Model(math.nan), params, None, None))
    assert opt.t == 1
    np.testing.assert_array_equal(params["w"], moved)


def test_only_plain_sgd_takes_the_models_fused_step():
    params = {"w": np.array([0.5, 0.5])}
    model = _Model(0.75, fused=True)
    plain = SGD(lr=0.1)
    assert plain.train_step(model, params, None, None) == 0.75
    assert model.fused_calls == [0.1] and plain.t == 1
    np.testing.assert_array_equal(params["w"], [0.5, 0.5])  # the stub's step moves nothing

    class Sub(SGD):
        pass

    sub = Sub(lr=0.1)
    sub.train_step(model, params, None, None)
    assert model.fused_calls == [0.1] and sub.t == 1  # its own update instead
    np.testing.assert_allclose(params["w"], [0.4, 0.7])
