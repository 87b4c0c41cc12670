"""Convolution and Pooling (chapter 7), and chainrule.util (im2col/col2im and the book's
other helpers): central differences in float64, values from a plain loop, the documented
ties, and one-line errors for bad input."""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chainrule.errors import DTypeError, ShapeError, StateError
from chainrule.gradcheck import check_layer
from chainrule.layers import Convolution, Pooling
from chainrule.util import col2im, conv_output_size, im2col, shuffle_dataset, smooth_curve


def convolve_by_loops(x, W, b, stride, pad):
    """The definition, one output at a time: the reference the layer is held to."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, height, width = x.shape
    fn, _, fh, fw = W.shape
    out_h, out_w = (height - fh) // stride + 1, (width - fw) // stride + 1
    out = np.empty((n, fn, out_h, out_w))
    for i in range(n):
        for f in range(fn):
            for r in range(out_h):
                for c in range(out_w):
                    window = x[i, :, r * stride : r * stride + fh, c * stride : c * stride + fw]
                    out[i, f, r, c] = np.sum(window * W[f]) + b[f]
    return out


# --------------------------------------------------------------------------- im2col


def test_im2col_lays_each_window_out_as_a_row():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(
        im2col(x, 2, 2), [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    )
    two_channels = np.stack([x[0, 0], -x[0, 0]])[None]  # (1, 2, 3, 3)
    assert im2col(two_channels, 2, 2)[0].tolist() == [0, 1, 3, 4, 0, -1, -3, -4]
    padded = im2col(x + 1, 2, 2, stride=2, pad=1)
    assert padded.shape == (4, 4)
    assert padded[0].tolist() == [0, 0, 0, 1]  # the top-left window: padding and x[0, 0] + 1
    assert padded[3].tolist() == [5, 6, 8, 9]


@pytest.mark.parametrize(
    ("shape", "window", "stride", "pad"),
    [((2, 3, 5, 5), (3, 3), 1, 0), ((2, 2, 7, 6), (3, 2), 2, 1), ((1, 1, 8, 8), (2, 2), 3, 2)],
)
def test_col2im_is_the_adjoint_of_im2col(shape, window, stride, pad):
    # <im2col(x), c> = <x, col2im(c)> for every x and c: col2im is exactly what backward needs.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    col = im2col(x, *window, stride, pad)
    c = rng.standard_normal(col.shape)
    back = col2im(c, shape, *window, stride, pad)
    assert back.shape == shape
    assert np.vdot(col, c) == pytest.approx(np.vdot(x, back), rel=1e-12)


def test_col2im_adds_up_where_windows_overlap():
    ones = np.ones((4, 4))  # the 2×2 windows of a 3×3 image, stride 1
    counts = col2im(ones, (1, 1, 3, 3), 2, 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_conv_output_size_is_an_integer():
    assert conv_output_size(28, 5) == 24
    assert conv_output_size(7, 3, stride=2, pad=1) == 4
    assert conv_output_size(8, 2, stride=3) == 3  # the position past the edge is not taken


def test_smooth_curve_is_a_kaiser_weighted_average_mirrored_at_the_ends():
    x = np.random.default_rng(9).standard_normal(40)
    weights = np.kaiser(11, 2)
    weights /= weights.sum()
    smoothed = smooth_curve(x)
    assert smoothed.shape == x.shape
    for i in (5, 17, 34):  # where the 11 points lie inside the curve
        assert smoothed[i] == pytest.approx(np.dot(weights, x[i - 5 : i + 6]), rel=1e-12)
    # At the ends the curve continues as its mirror image: x[1], x[2], … before x[0] and
    # x[-1], x[-2], … after x[-1], as the book's.
    before, after = x[5:0:-1], x[-1:-6:-1]
    assert smoothed[0] == pytest.approx(np.dot(weights, np.r_[before, x[:6]]), rel=1e-12)
    assert smoothed[-1] == pytest.approx(np.dot(weights, np.r_[x[-6:], after][:11]), rel=1e-12)
    np.testing.assert_allclose(smooth_curve(np.full(30, 2.5)), 2.5, rtol=1e-14)
    np.testing.assert_array_equal(smooth_curve([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0])


def test_shuffle_dataset_keeps_each_label_with_its_sample():
    x, t = np.arange(20).reshape(10, 2), np.arange(10)
    xs, ts = shuffle_dataset(x, t, seed=0)
    np.testing.assert_array_equal(xs[:, 0] // 2, ts)
    assert sorted(ts) == list(range(10)) and not np.array_equal(ts, t)
    np.testing.assert_array_equal(shuffle_dataset(x, t, seed=0)[1], ts)


# --------------------------------------------------------------------------- Convolution


CONV_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 2), 2, 1),
    ((1, 2, 8, 7), (3, 2, 2, 3), 3, 2),  # a stride that leaves a column over
    ((3, 1, 5, 5), (2, 1, 5, 5), 1, 0),  # one output pixel
    ((2, 1, 4, 4), (2, 1, 1, 1), 1, 0),  # 1×1 filters
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES)
def test_convolution_gradients_match_numerical(x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(1)
    layer = Convolution(
        rng.standard_normal(w_shape), rng.standard_normal(w_shape[0]), stride=stride, pad=pad
    )
    report = check_layer(layer, rng.standard_normal(x_shape))
    assert [c.name for c in report.checks] == ["input 0", "W", "b"]
    assert report.passed, report.format()


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES)
def test_convolution_values_are_the_definitions(x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(2)
    x, W, b = (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )
    out = Convolution(W, b, stride, pad).forward(x)
    np.testing.assert_allclose(out, convolve_by_loops(x, W, b, stride, pad), rtol=1e-12)


def test_convolution_keeps_the_books_attributes_and_float32():
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((30, 1, 5, 5)).astype(np.float32), np.zeros(30, np.float32)
    layer = Convolution(W, b)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    out = layer.forward(x)
    assert out.shape == (2, 30, 24, 24) and out.dtype == np.float32
    assert layer.col.shape == (2 * 24 * 24, 25) and layer.col_W.shape == (25, 30)
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert layer.dW.shape == W.shape and layer.db.shape == b.shape
    assert layer.db.tolist() == [2 * 24 * 24] * 30


def test_convolution_errors_are_one_line_and_name_the_layer():
    layer = Convolution(np.zeros((30, 1, 5, 5)), np.zeros(30), name="Conv1")
    with pytest.raises(ShapeError, match=r"Conv1: input must be images \(N, C, H, W\), got shape "
                       r"\(10, 784\); load_mnist\(flatten=False\)"):  # fmt: skip
        layer.forward(np.zeros((10, 784)))
    with pytest.raises(ShapeError, match=r"Conv1: .*\(2, 3, 28, 28\) has 3 channels, but the "
                       r"filters W expect 1"):  # fmt: skip
        layer.forward(np.zeros((2, 3, 28, 28)))
    with pytest.raises(ShapeError, match=r"the 5×5 filter is larger than the input's 4×4 images"):
        layer.forward(np.zeros((2, 1, 4, 4)))
    layer.pad = 1
    layer.forward(np.zeros((2, 1, 4, 4)))  # padded to 6×6 it fits
    with pytest.raises(DTypeError, match="Conv1: input must hold real numbers"):
        layer.forward(np.zeros((2, 1, 8, 8), complex))
    with pytest.raises(ShapeError, match=r"W must be filters \(FN, C, FH, FW\)"):
        Convolution(np.zeros((30, 25)), np.zeros(30))
    with pytest.raises(ShapeError, match=r"b of shape \(FN,\); got W \(3, 1, 2, 2\), b \(2,\)"):
        Convolution(np.zeros((3, 1, 2, 2)), np.zeros(2))
    with pytest.raises(ShapeError, match="stride must be at least 1"):
        Convolution(np.zeros((3, 1, 2, 2)), np.zeros(3), stride=0)
    with pytest.raises(ShapeError, match="pad must be an integer"):
        Convolution(np.zeros((3, 1, 2, 2)), np.zeros(3), pad=0.5)


def test_convolution_backward_checks_its_state_and_dout():
    layer = Convolution(np.ones((2, 1, 2, 2)), np.zeros(2))
    with pytest.raises(StateError, match="before forward"):
        layer.backward(np.ones((1, 2, 2, 2)))
    layer.forward(np.ones((1, 1, 3, 3)))
    with pytest.raises(ShapeError, match=r"dout has shape \(1, 2, 3, 3\), expected \(1, 2, 2, 2\)"):
        layer.backward(np.ones((1, 2, 3, 3)))


# --------------------------------------------------------------------------- Pooling


@pytest.mark.parametrize(
    ("x_shape", "pool", "stride", "pad"),
    [
        ((2, 3, 6, 6), (2, 2), 2, 0),
        ((2, 2, 7, 5), (3, 3), 2, 1),  # overlapping windows, padding
        ((1, 2, 5, 6), (2, 3), 1, 1),
        ((2, 1, 4, 4), (4, 4), 1, 0),  # one window: the global maximum
    ],
)
def test_pooling_gradients_match_numerical(x_shape, pool, stride, pad):
    # Distinct values, no two within the step of each other: no window has a tie.
    rng = np.random.default_rng(4)
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.01 - 1.0
    report = check_layer(Pooling(*pool, stride=stride, pad=pad), x)
    assert report.passed, report.format()


def test_pooling_values_and_shapes():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out = Pooling(2, 2, stride=2).forward(x)
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])
    assert Pooling(2, 2).forward(x).shape == (1, 1, 3, 3)  # the book's default stride 1
    assert Pooling(3, 3, stride=2, pad=1).forward(np.zeros((2, 3, 7, 7))).shape == (2, 3, 4, 4)


def test_pooling_ties_send_the_gradient_to_the_first_maximum():
    # One 2×2 window whose maximum 3 sits at (0, 1) and (1, 0): the first in row-major
    # order, (0, 1), gets the whole gradient; the other gets none.
    layer = Pooling(2, 2, stride=2)
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    assert layer.forward(x).item() == 3.0
    np.testing.assert_array_equal(layer.backward(np.array([[[[5.0]]]]))[0, 0], [[0, 5], [0, 0]])
    # A window of equal values: the top-left entry.
    layer.forward(np.full((1, 1, 2, 2), 7.0))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize(("pool", "stride", "pad"), [((2, 2), 2, 0), ((3, 2), 1, 1)])
def test_pooling_keeps_the_books_arg_max(pool, stride, pad):
    # The book's: argmax over each row of im2col (one per window and channel), in row order.
    x = np.random.default_rng(6).integers(0, 3, (2, 3, 6, 5)).astype(float)  # many ties
    layer = Pooling(*pool, stride=stride, pad=pad)
    layer.forward(x)
    rows = im2col(x, *pool, stride, pad, pad_value=-np.inf).reshape(-1, pool[0] * pool[1])
    np.testing.assert_array_equal(layer.arg_max, np.argmax(rows, axis=1))


def test_pooling_input_that_is_the_maximum_of_overlapping_windows_gets_their_sum():
    layer = Pooling(2, 2, stride=1)
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0  # the maximum of all four windows
    layer.forward(x)
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 1, 1] == 10.0 and np.count_nonzero(dx) == 1


def test_pooling_padding_never_wins_over_negative_values():
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    out = Pooling(2, 2, stride=2, pad=1).forward(x)
    # The corner window holds x[0, 0] = -1 and padding: its maximum is -1, not 0.
    assert out[0, 0, 0, 0] == -1.0
    assert (out < 0).all()


def test_pooling_takes_integers_and_booleans():
    x = np.arange(16).reshape(1, 1, 4, 4)
    out = Pooling(2, 2, stride=2, pad=1).forward(x)
    assert out.dtype == np.float64 and out[0, 0, 0, 0] == 0
    assert Pooling(2, 2, stride=2).forward(x > 7).sum() == 2


def test_pooling_errors_are_one_line_and_name_the_layer():
    with pytest.raises(ShapeError, match=r"Pool1: the 3×3 pool window is larger than the "
                       r"input's 2×2 images"):  # fmt: skip
        Pooling(3, 3, name="Pool1").forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ShapeError, match=r"Pooling: input must be images \(N, C, H, W\)"):
        Pooling(2, 2).forward(np.zeros((4, 16)))
    with pytest.raises(ShapeError, match=r"pad 2 is more than half the 3×3 window"):
        Pooling(3, 3, pad=2)
    with pytest.raises(ShapeError, match="pool_h must be at least 1"):
        Pooling(0, 2)
    layer = Pooling(2, 2, stride=2)
    with pytest.raises(StateError):
        layer.backward(np.ones((1, 1, 1, 1)))
    layer.forward(np.ones((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match="dout has shape"):
        layer.backward(np.ones((1, 1, 4, 4)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Convolution(np.ones((2, 2, 2, 2)), np.zeros(2), stride=1, pad=1),
        lambda: Pooling(2, 2, stride=1, pad=1),
    ],
)
def test_backward_changes_neither_dout_nor_what_forward_saved(make):
    layer = make()
    x = np.random.default_rng(5).standard_normal((2, 2, 4, 4))
    x_before = x.copy()
    out = layer.forward(x)
    saved = {k: np.copy(v) for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    dout = np.full(out.shape, 0.5)
    first = layer.backward(dout)
    second = layer.backward(dout)
    np.testing.assert_array_equal(first, second)
    assert (dout == 0.5).all()
    np.testing.assert_array_equal(x, x_before)
    for key, before in saved.items():
        if key not in ("dW", "db"):
            np.testing.assert_array_equal(getattr(layer, key), before)


# --------------------------------------------------------------------------- by the definition


def conv_gradients_by_loops(x, W, dout, stride, pad):
    """dx and dW, one output at a time: each output's dout reaches the window under the
    filter (times the filter) and the filter (times the window)."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx, dW = np.zeros(padded.shape), np.zeros(W.shape)
    fh, fw = W.shape[2:]
    for i, f, r, c in np.ndindex(dout.shape):
        rows, cols = slice(r * stride, r * stride + fh), slice(c * stride, c * stride + fw)
        dx[i, :, rows, cols] += dout[i, f, r, c] * W[f]
        dW[f] += dout[i, f, r, c] * padded[i, :, rows, cols]
    return dx[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]], dW


def pool_by_loops(x, pool, stride, pad, dout):
    """Max pooling and its gradient, one window at a time; ties go to the first maximum."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                    constant_values=-np.inf)  # fmt: skip
    dx = np.zeros(padded.shape)
    out = np.empty(dout.shape)
    for i, ch, r, c in np.ndindex(dout.shape):
        window = padded[i, ch, r * stride : r * stride + pool[0], c * stride : c * stride + pool[1]]
        y, x_ = np.unravel_index(np.argmax(window), pool)
        out[i, ch, r, c] = window[y, x_]
        dx[i, ch, r * stride + y, c * stride + x_] += dout[i, ch, r, c]
    return out, dx[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]


image_cases = st.fixed_dictionaries(
    {
        "n": st.integers(1, 3),
        "c": st.integers(1, 3),
        "h": st.integers(1, 7),
        "w": st.integers(1, 7),
        "stride": st.integers(1, 3),
        "pad": st.integers(0, 2),
        "dtype": st.sampled_from([np.float32, np.float64]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=80, deadline=None)
@given(case=image_cases, fn=st.integers(1, 3), fh=st.integers(1, 4), fw=st.integers(1, 4))
def test_convolution_is_the_definition_at_any_shape_stride_and_padding(case, fn, fh, fw):
    n, c, h, w, stride, pad, dtype = (
        case[k] for k in ("n", "c", "h", "w", "stride", "pad", "dtype")
    )
    assume(fh <= h + 2 * pad and fw <= w + 2 * pad)
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W, b = rng.standard_normal((fn, c, fh, fw)).astype(dtype), rng.standard_normal(fn).astype(dtype)
    layer = Convolution(W, b, stride, pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == layer.dW.dtype == dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    expected_dx, expected_dW = conv_gradients_by_loops(x, W, dout, stride, pad)
    for got, expected in [
        (out, convolve_by_loops(x.astype(np.float64), W, b, stride, pad)),
        (dx, expected_dx),
        (layer.dW, expected_dW),
        (layer.db, dout.sum(axis=(0, 2, 3))),
    ]:
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * 10)


def tiled(h, w, size, dtype=np.float64):
    """A pooling case whose windows are ``size`` apart and of that size, no padding."""
    case = {"n": 2, "c": 2, "h": h, "w": w, "stride": size, "pad": 0, "dtype": dtype, "seed": 0}
    return example(case=case, pool_h=size, pool_w=size, ties=True)


@tiled(4, 6, 2)  # the windows tile the image: the reshape path
@tiled(5, 6, 2)  # a row left over
@tiled(6, 7, 3, np.float32)  # a column left over
@settings(max_examples=80, deadline=None)
@given(case=image_cases, pool_h=st.integers(1, 4), pool_w=st.integers(1, 4), ties=st.booleans())
def test_pooling_is_the_definition_at_any_shape_stride_and_padding(case, pool_h, pool_w, ties):
    n, c, h, w, stride, pad, dtype = (
        case[k] for k in ("n", "c", "h", "w", "stride", "pad", "dtype")
    )
    assume(2 * pad <= min(pool_h, pool_w) and pool_h <= h + 2 * pad and pool_w <= w + 2 * pad)
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((n, c, h, w))
    x = (np.round(x) if ties else x).astype(dtype)  # whole numbers: many windows tie
    layer = Pooling(pool_h, pool_w, stride, pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == dtype
    expected_out, expected_dx = pool_by_loops(x, (pool_h, pool_w), stride, pad, dout)
    np.testing.assert_array_equal(out, expected_out)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12  # where overlapping windows add up
    np.testing.assert_allclose(dx, expected_dx, rtol=tolerance, atol=tolerance)
