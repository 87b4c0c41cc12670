"""Random shapes and dtypes thrown at every node and at the loss.

Whatever comes in, a node either works or raises one of chainrule's own errors, whose
message names the node; never a bare NumPy error from deep inside. Each test also says,
from the inputs alone, whether the node should work, and checks that it does exactly then.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.errors import ChainruleError
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss

DTYPES = ["float32", "float64", "int64", "uint8", "bool", "complex128", "object", "str"]
REAL = {"float32", "float64", "int64", "uint8", "bool"}  # of DTYPES, those of kind "biuf"
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def array(shape, dtype, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape) * 3
    if dtype == "object":
        # Through asarray: a 0-d values is a NumPy scalar, whose astype(object) would give
        # a plain Python float (a real number) instead of an object array.
        return np.asarray(values).astype(object)
    if dtype == "str":
        return values.astype(str)
    return values.astype(dtype)


def forward_backward(layer, *inputs, dout_shape=None):
    """Run forward then backward; return True if both worked, False on a ChainruleError."""
    name = type(layer).__name__
    try:
        out = layer.forward(*inputs)
    except ChainruleError as error:
        assert name in str(error) or "Affine" in str(error)
        return False
    assert np.all(np.isfinite(np.asarray(out, dtype=np.float64)))
    dout = np.ones(np.shape(out) if dout_shape is None else dout_shape)
    try:
        grads = layer.backward(1.0 if np.ndim(out) == 0 and dout_shape is None else dout)
    except ChainruleError as error:
        assert name in str(error) or "Affine" in str(error)
        return False
    grads = grads if isinstance(grads, tuple) else (grads,)
    for grad, x in zip(grads, inputs):
        assert np.shape(grad) == np.shape(x)
    return True


@settings(max_examples=200, deadline=None)
@given(
    layer=st.sampled_from([MulLayer, AddLayer]),
    x_shape=shapes,
    y_shape=shapes,
    x_dtype=st.sampled_from(DTYPES),
    y_dtype=st.sampled_from(DTYPES),
)
def test_mul_and_add(layer, x_shape, y_shape, x_dtype, y_dtype):
    x, y = array(x_shape, x_dtype), array(y_shape, y_dtype, 1)
    expected = x_dtype in REAL and y_dtype in REAL and broadcastable(x_shape, y_shape)
    assert forward_backward(layer(), x, y) == expected


def broadcastable(a, b):
    """NumPy's rule: aligned from the right, each pair of sizes is equal or holds a 1."""
    return all(m == n or 1 in (m, n) for m, n in zip(reversed(a), reversed(b)))


@settings(max_examples=150, deadline=None)
@given(
    layer=st.sampled_from([Relu, Sigmoid]),
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    wrong_dout=st.booleans(),
)
def test_activations(layer, shape, dtype, wrong_dout):
    dout_shape = (*shape, 2) if wrong_dout else None
    expected = dtype in REAL and not wrong_dout
    assert forward_backward(layer(), array(shape, dtype), dout_shape=dout_shape) == expected


@settings(max_examples=150, deadline=None)
@given(
    x_shape=shapes,
    x_like_w=st.sampled_from([None, "sample", "batch"]),
    fan_in=st.integers(1, 4),
    fan_out=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES),
    w_dtype=st.sampled_from(["float32", "float64"]),
)
def test_affine(x_shape, x_like_w, fan_in, fan_out, dtype, w_dtype):
    # An x of fan_in values per sample often enough to test the cases that work.
    if x_like_w == "sample":
        x_shape = (fan_in,)
    elif x_like_w == "batch":
        x_shape = (*x_shape[:1], fan_in)  # a batch of 0 to 3 samples, or one sample
    layer = Affine(array((fan_in, fan_out), w_dtype), array((fan_out,), w_dtype))
    expected = dtype in REAL and fits_affine(x_shape, fan_in)
    assert forward_backward(layer, array(x_shape, dtype)) == expected


def fits_affine(shape, fan_in):
    """A non-empty batch (N, ...) of fan_in values per sample; a 1-d x is one sample."""
    if len(shape) == 0 or shape[0] == 0:
        return False
    per_sample = shape[0] if len(shape) == 1 else math.prod(shape[1:])
    return per_sample == fan_in


@settings(max_examples=200, deadline=None)
@given(
    x_shape=st.one_of(shapes, st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)),
    t_shape=shapes,
    t_like_x=st.sampled_from([None, "one-hot", "indices"]),
    x_dtype=st.sampled_from(DTYPES),
    t_dtype=st.sampled_from(DTYPES),
)
def test_softmax_with_loss(x_shape, t_shape, t_like_x, x_dtype, t_dtype):
    # Labels of a shape that fits the logits often enough to test the cases that work.
    if t_like_x == "one-hot":
        t_shape = x_shape
    elif t_like_x == "indices":
        t_shape = x_shape[:-1]  # (N,) for logits (N, C); () for one sample (C,)
    t = array(t_shape, t_dtype)
    # Plausible class indices, sometimes out of range: above C-1, and for int64 below 0.
    if t_dtype == "int64":
        t = t % 4 - 1
    elif t_dtype == "uint8":
        t = t % 3
    expected = x_dtype in REAL and valid_logits_and_labels(x_shape, t, t_dtype)
    assert forward_backward(SoftmaxWithLoss(), array(x_shape, x_dtype), t) == expected


def valid_logits_and_labels(x_shape, t, t_dtype):
    """Logits (N, C) or (C,), non-empty; labels one-hot rows of their shape (numbers, not
    bool or complex) or class indices (N,) or (N, 1) (a 0-d one for 1-d logits) in 0..C-1."""
    if len(x_shape) not in (1, 2) or math.prod(x_shape) == 0:
        return False
    n, c = (1, x_shape[0]) if len(x_shape) == 1 else x_shape
    if t.shape == x_shape:
        return t_dtype in {"float32", "float64", "int64", "uint8"}
    if t.shape in ((n,), (n, 1)) or (len(x_shape) == 1 and t.shape == ()):
        return t_dtype in {"int64", "uint8"} and all(0 <= label < c for label in t.flat)
    return False
