"""Random shapes and dtypes thrown at every node and at the loss.

Whatever comes in, a node either works or raises one of chainrule's own errors, whose
message names the node; never a bare NumPy error from deep inside.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.errors import ChainruleError
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss

DTYPES = ["float32", "float64", "int64", "uint8", "bool", "complex128", "object", "str"]
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def array(shape, dtype, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape) * 3
    if dtype == "object":
        return values.astype(object)
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
    forward_backward(layer(), array(x_shape, x_dtype), array(y_shape, y_dtype, 1))


@settings(max_examples=150, deadline=None)
@given(
    layer=st.sampled_from([Relu, Sigmoid]),
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    wrong_dout=st.booleans(),
)
def test_activations(layer, shape, dtype, wrong_dout):
    dout_shape = (*shape, 2) if wrong_dout else None
    assert not (
        forward_backward(layer(), array(shape, dtype), dout_shape=dout_shape) and wrong_dout
    )


@settings(max_examples=150, deadline=None)
@given(
    x_shape=shapes,
    fan_in=st.integers(1, 4),
    fan_out=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES),
    w_dtype=st.sampled_from(["float32", "float64"]),
)
def test_affine(x_shape, fan_in, fan_out, dtype, w_dtype):
    layer = Affine(array((fan_in, fan_out), w_dtype), array((fan_out,), w_dtype))
    forward_backward(layer, array(x_shape, dtype))


@settings(max_examples=200, deadline=None)
@given(
    x_shape=shapes, t_shape=shapes, x_dtype=st.sampled_from(DTYPES), t_dtype=st.sampled_from(DTYPES)
)
def test_softmax_with_loss(x_shape, t_shape, x_dtype, t_dtype):
    t = array(t_shape, t_dtype)
    if t_dtype in ("int64", "uint8"):
        t = np.abs(t) % 3  # plausible class indices, sometimes out of range
    forward_backward(SoftmaxWithLoss(), array(x_shape, x_dtype), t)
