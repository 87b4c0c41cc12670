"""Property-based tests over random shapes for Affine and the loss."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.layers import Affine, SoftmaxWithLoss
from chainrule.losses import softmax

dims = st.integers(min_value=1, max_value=6)


@settings(max_examples=60, deadline=None)
@given(
    batch=dims,
    feature_dims=st.lists(dims, min_size=1, max_size=3),
    fan_out=dims,
    seed=st.integers(0, 2**32 - 1),
)
def test_affine_matches_its_definition_for_any_shape(batch, feature_dims, fan_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *feature_dims))
    fan_in = int(np.prod(feature_dims))
    W, b = rng.standard_normal((fan_in, fan_out)), rng.standard_normal(fan_out)
    layer = Affine(W, b)
    out = layer.forward(x)
    flat = x.reshape(batch, fan_in)
    np.testing.assert_allclose(out, flat @ W + b, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx.reshape(batch, fan_in), dout @ W.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.dW, flat.T @ dout, rtol=1e-12, atol=1e-12)
    # directional derivative: <dout, d out> = <dx, δx> + <dW, δW> + <db, δb> for a linear map
    dx_dir, dW_dir, db_dir = (rng.standard_normal(a.shape) for a in (x, W, b))
    change = dx_dir.reshape(batch, fan_in) @ W + flat @ dW_dir + db_dir
    lhs = float(np.sum(dout * change))
    rhs = float(np.sum(dx * dx_dir) + np.sum(layer.dW * dW_dir) + np.sum(layer.db * db_dir))
    assert abs(lhs - rhs) <= 1e-9 * (1 + abs(lhs))


@settings(max_examples=80, deadline=None)
@given(
    batch=dims,
    classes=st.integers(2, 8),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
    seed=st.integers(0, 2**32 - 1),
    one_hot=st.booleans(),
)
def test_loss_is_finite_nonnegative_and_gradient_rows_sum_to_zero(
    batch, classes, scale, seed, one_hot
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, classes)) * scale
    labels = rng.integers(0, classes, batch)
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, np.eye(classes)[labels] if one_hot else labels)
    assert np.isfinite(loss) and loss >= 0
    dx = layer.backward()
    assert np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-12)
    # the label's entry is the only negative one: (y - 1) / N
    np.testing.assert_allclose(
        dx[np.arange(batch), labels], (softmax(x)[np.arange(batch), labels] - 1) / batch, atol=1e-15
    )
