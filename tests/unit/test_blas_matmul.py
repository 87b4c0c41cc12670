"""blas.matmul: the same numbers, bit for bit, on any number of threads, and np.matmul's."""

import threading
import time
from functools import partial
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from chainrule import blas

WORKER_COUNTS = (1, 2, 3)


def products(a, b, out_layout):
    """``blas.matmul(a, b)`` on 1, 2 and 3 workers, with BLAS on one thread as in a step."""
    results = []
    for count in WORKER_COUNTS:
        out = make_out(a, b, out_layout)
        with threadpool_limits(limits=1, user_api="blas"), blas.workers(count):
            got = blas.matmul(a, b, out)
        assert out is None or got is out
        results.append(got)
    return results


def make_out(a, b, layout):
    shape = (*a.shape[:-1], b.shape[1])
    if layout == "new":
        return None
    if layout == "F" and len(shape) == 2:
        return np.empty(shape[::-1], a.dtype).T
    return np.full(shape, np.nan, a.dtype)


def layout(rng, shape, kind, dtype):
    """An array of ``shape`` laid out as ``kind``: C order, a transposed (F-ordered) view,
    or a view that starts one element into a wider array (unaligned, with a longer row)."""
    if kind == "T" and len(shape) == 2:
        return np.ascontiguousarray(rng.standard_normal(shape[::-1]).astype(dtype)).T
    if kind == "offset":
        wide = rng.standard_normal((*shape[:-1], shape[-1] + 3)).astype(dtype)
        return wide[..., 1 : shape[-1] + 1]
    return rng.standard_normal(shape).astype(dtype)


def assert_bitwise_equal(results):
    first = results[0]
    for other in results[1:]:
        assert other.dtype == first.dtype and other.shape == first.shape
        assert other.tobytes() == first.tobytes()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.one_of(st.none(), st.integers(1, 200)),  # None: a 1-d a, as ``ones @ dz``
    inner=st.integers(1, 120),
    cols=st.integers(1, 200),
    dtype=st.sampled_from([np.float32, np.float64]),
    a_kind=st.sampled_from(["C", "T", "offset"]),
    b_kind=st.sampled_from(["C", "T", "offset"]),
    out_layout=st.sampled_from(["new", "C", "F"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_worker_count_gives_the_same_bits(
    rows, inner, cols, dtype, a_kind, b_kind, out_layout, seed
):
    rng = np.random.default_rng(seed)
    a = layout(rng, (inner,) if rows is None else (rows, inner), a_kind, dtype)
    b = layout(rng, (inner, cols), b_kind, dtype)
    # Blocks of a few hundred multiply-adds, so that these small products are cut up too.
    with mock.patch.object(blas, "_BLOCK_MACS", 64):
        results = products(a, b, out_layout)
    assert_bitwise_equal(results)
    # ... and they are the product, to within rounding.
    tol = 1e-5 if dtype == np.float32 else 1e-12
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert np.all(np.abs(results[0] - expected) <= tol * (scale + 1e-30) * inner)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        # the training steps' products: X·W, Xᵀ·dZ, dZ·Wᵀ, ones·dZ, a convolution's col·W
        lambda rng, d: (rng.standard_normal((256, 784)), rng.standard_normal((784, 1024))),
        lambda rng, d: (rng.standard_normal((256, 784)).T, rng.standard_normal((256, 1024))),
        lambda rng, d: (rng.standard_normal((256, 1024)), rng.standard_normal((784, 1024)).T),
        lambda rng, d: (np.ones(4096), rng.standard_normal((4096, 1024))),
        lambda rng, d: (rng.standard_normal((26, 57600)).T, rng.standard_normal((26, 30))),
    ],
)
def test_the_steps_products_are_cut_up_and_give_the_same_bits(make, dtype):
    a, b = (x.astype(dtype) for x in make(np.random.default_rng(0), dtype))
    rows = a.shape[0] if a.ndim == 2 else 1
    _, cuts = blas.block_bounds(rows, a.shape[-1], b.shape[1])
    assert len(cuts) > 2  # cut into two blocks or more: the test means something
    results = products(a, b, "C")
    assert_bitwise_equal(results)
    rtol, atol = (1e-4, 1e-3) if dtype == np.float32 else (1e-11, 1e-10)
    np.testing.assert_allclose(results[0], np.matmul(a, b), rtol=rtol, atol=atol)


def test_cuts_depend_on_the_shapes_alone_and_split_an_output_dimension():
    assert blas.block_bounds(10, 10, 10) == (0, [0, 10])  # small: one block
    axis, cuts = blas.block_bounds(256, 784, 1024)
    assert axis == 1 and cuts[0] == 0 and cuts[-1] == 1024  # the longer side: columns
    assert len(cuts) - 1 in (2, 4, 8, 16)
    assert all(c % 16 == 0 for c in cuts)
    axis, cuts = blas.block_bounds(57600, 26, 30)
    assert axis == 0 and cuts[-1] == 57600
    # A long sum into a small output cannot be cut without cutting the sum: one block.
    assert blas.block_bounds(26, 10**7, 30) == (1, [0, 30])


def test_blocks_run_on_several_threads_and_errors_reach_the_caller(monkeypatch):
    threads, other_thread = set(), threading.Event()
    product = blas._product
    caller = threading.get_ident()

    def recording(a, b, out):
        compute = product(a, b, out)

        def block():
            threads.add(threading.get_ident())
            if threading.get_ident() != caller:
                other_thread.set()
            else:
                other_thread.wait(timeout=10)  # the caller waits for a helper to join in
            compute()

        return block

    monkeypatch.setattr(blas, "_product", recording)
    a, b = np.ones((256, 512)), np.ones((512, 256))
    with blas.workers(2):
        np.testing.assert_array_equal(blas.matmul(a, b), np.full((256, 256), 512.0))
    assert len(threads) == 2

    failed = threading.Event()

    def failing(a, b, out):
        def block():
            if threading.get_ident() != caller:
                failed.set()
                raise ZeroDivisionError("in a helper")
            failed.wait(timeout=10)

        return block

    monkeypatch.setattr(blas, "_product", failing)
    with blas.workers(2), pytest.raises(ZeroDivisionError, match="in a helper"):
        blas.matmul(a, b)


def test_products_it_does_not_cut_are_numpys():
    rng = np.random.default_rng(1)
    stack = rng.standard_normal((3, 200, 300)), rng.standard_normal((3, 300, 200))
    np.testing.assert_array_equal(blas.matmul(*stack), np.matmul(*stack))
    ints = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    np.testing.assert_array_equal(blas.matmul(*ints), np.matmul(*ints))
    with pytest.raises(ValueError, match="mismatch"):
        blas.matmul(np.ones((300, 400)), np.ones((300, 400)))
    with pytest.raises(ValueError):
        blas.matmul(np.ones((2000, 400)), np.ones((400, 2000)), out=np.empty((5, 5)))


def test_no_helper_still_writes_when_the_caller_stops_on_an_exception(monkeypatch):
    caller = threading.get_ident()
    helper_started, finished = threading.Event(), []

    def blocks(a, b, out):
        def block():
            if threading.get_ident() == caller:
                helper_started.wait(timeout=10)
                raise KeyboardInterrupt  # as Ctrl-C in a notebook, mid-product
            helper_started.set()
            time.sleep(0.2)  # a block that takes a while
            finished.append(True)

        return block

    monkeypatch.setattr(blas, "_product", blocks)
    with blas.workers(2), pytest.raises(KeyboardInterrupt):
        blas.matmul(np.ones((256, 512)), np.ones((512, 256)))
    assert finished == [True]  # the helper's block was over before matmul raised


def test_a_block_shares_among_threads_of_its_own_only_when_it_sets_workers():
    """The engine's halves of a batch each run on workers of their own: inside a block of
    a shared job, a share with ``workers(2)`` gets a helper of the block's thread's own,
    and one without runs on that thread alone (as a conv chunk's copies do)."""

    def nested(count):
        ran, other = [], threading.Event()
        block_thread = threading.get_ident()
        assert blas.worker_count() == 1  # on the caller's thread too, inside a block

        def part():
            ran.append(threading.get_ident())
            if threading.get_ident() != block_thread:
                other.set()
            elif count:
                other.wait(timeout=10)  # wait for a helper to take the other part

        if count:
            with blas.workers(count):
                blas.share([part, part])
        else:
            blas.share([part, part])
        return ran, block_thread

    for count in (2, None):
        results = []
        with blas.workers(2):
            blas.share([partial(lambda c, out: out.append(nested(c)), count, results)] * 2)
        assert len(results) == 2
        for ran, block_thread in results:
            if count is None:
                assert ran == [block_thread, block_thread]
            else:
                assert len(set(ran)) == 2 and block_thread in ran
