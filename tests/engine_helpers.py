"""What the engine's tests share: a network's step by the layers and by the engine from
the same state (dropout generators, running statistics), and the comparison."""

import copy
import itertools

import numpy as np
from threadpoolctl import threadpool_limits

from chainrule.engine import Step, layer_list, parameter_names
from chainrule.layers import BatchNormalization, Dropout

TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
# Below a batch normalisation, of the network's largest gradient: its dx = (dx̂ −
# mean(dx̂) − x̂·mean(dx̂·x̂)) / σ cancels most of dx̂, and 1/σ amplifies what is left
# (over batches of 3 to 6, with constant features, σ = √ε)
NOISE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}


def _state(net):
    layers = layer_list(net.layers)
    generators = list({id(x.rng): x.rng for x in layers if isinstance(x, Dropout)}.values())
    norms = [x for x in layers if isinstance(x, BatchNormalization)]
    return generators, norms


def _below_batch_norm(net):
    """The parameters whose gradients pass back through a batch normalisation, and its
    own (x̂ = (x − μ)/σ carries its input's rounding, amplified by the subtraction). Its
    ``dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ`` cancels most of dx̂ (all of it for the
    bias right before it): what is left carries the rounding of dx̂'s size."""
    layers = layer_list(net.layers)
    norms = [i for i, layer in enumerate(layers) if isinstance(layer, BatchNormalization)]
    below = {id(layer) for layer in layers[: norms[-1] + 1]} if norms else set()
    return {key for key, layer, _ in parameter_names(layers) if id(layer) in below}


def _zero_in_exact_arithmetic(net):
    """The biases right before a batch normalisation, which subtracts what they add: their
    gradients are rounding noise, summed over every position of the batch."""
    layers = layer_list(net.layers)
    names = {id(layer): key for key, layer, attr in parameter_names(layers) if attr == "b"}
    return {
        names[id(layer)]
        for layer, after in itertools.pairwise(layers)
        if id(layer) in names and isinstance(after, BatchNormalization)
    }


def both_steps(net, x, t, dout=1.0):
    """``(by the layers, by the engine, engine ran)``: each a loss, the gradients (copies)
    and the running statistics and generator states after it, from the same start."""
    generators, norms = _state(net)
    start = (
        [g.bit_generator.state for g in generators],
        [(n.running_mean, n.running_var) for n in norms],
    )

    def after():
        stats = [(np.copy(n.running_mean), np.copy(n.running_var)) for n in norms]
        return stats, [g.bit_generator.state for g in generators]

    def reset():
        for g, state in zip(generators, start[0]):
            g.bit_generator.state = state
        for n, (mean, var) in zip(norms, start[1]):
            n.running_mean, n.running_var = mean, var

    loss, grads = net.loss_and_gradient_by_layers(x, t, dout=dout)
    by_layers = (float(loss), {k: np.array(g) for k, g in grads.items()}, after())
    reset()
    step = Step(net)
    loss, grads = step.loss_and_gradient(x, t, dout=dout)
    by_engine = (float(loss), {k: np.array(g) for k, g in grads.items()}, after())
    return by_layers, by_engine, step._train is not None


class _Float32Draws:
    """A generator whose ``random`` gives the float32 numbers of the one it wraps, as
    float64: a float64 copy of a float32 network then drops what the original drops."""

    def __init__(self, generator):
        self.generator = generator
        self.bit_generator = generator.bit_generator

    def random(self, size=None, dtype=np.float64, out=None):
        shape = np.shape(out) if out is not None else size
        draws = self.generator.random(shape, dtype=np.float32).astype(np.float64)
        if out is None:
            return draws
        out[...] = draws
        return out


def _in_float64(net):
    """A copy of the network computing in float64 (the same dropout generators' states,
    drawing the float32 numbers the original draws)."""
    clone = copy.deepcopy(net)
    wrapped = {}
    for layer in layer_list(clone.layers):
        if isinstance(layer, Dropout):
            layer.rng = wrapped.setdefault(id(layer.rng), _Float32Draws(layer.rng))
    for _, layer, attribute in parameter_names(layer_list(clone.layers)):
        setattr(layer, attribute, getattr(layer, attribute).astype(np.float64))
    for layer in layer_list(clone.layers):
        if isinstance(layer, BatchNormalization) and layer.running_mean is not None:
            layer.running_mean = layer.running_mean.astype(np.float64)
            layer.running_var = layer.running_var.astype(np.float64)
    clone.dtype = np.dtype(np.float64)
    names = parameter_names(layer_list(clone.layers))
    clone.params = {key: getattr(layer, attribute) for key, layer, attribute in names}
    return clone


def assert_same_step(net, x, t, dout=1.0, *, engine=True):
    """The engine's loss, gradients, running statistics and dropout draws are the layers'.

    float64: to 1e-12 of each gradient's largest entry (of a tenth of the network's
    largest gradient at least; below a batch normalisation, see NOISE).
    float32: as close to the float64 numbers as the layers' float32 numbers are (ten times
    their error: BLAS sums long columns in float32 with less care than NumPy's pairwise
    sums), within 1e-5 (a batch normalisation's ``x − μ`` and a pooling's near-ties amplify rounding
    in both, so agreeing with each other to 1e-5 is not what float32 can promise).
    """
    reference = _in_float64(net) if net.dtype == np.float32 else None
    (loss, grads, (stats, draws)), (e_loss, e_grads, (e_stats, e_draws)), ran = both_steps(
        net, x, t, dout
    )
    assert ran == engine
    assert list(e_grads) == list(grads)
    assert e_draws == draws  # the same masks drawn: the generators end in one state
    everything = max(np.abs(g).max() for g in grads.values())
    cancelled, zero = _below_batch_norm(net), _zero_in_exact_arithmetic(net)
    if reference is not None:
        (truth, true_grads, (true_stats, _)), _, _ = both_steps(
            reference, x.astype(np.float64), t, dout
        )
    for key, g in grads.items():
        assert e_grads[key].dtype == net.dtype and e_grads[key].shape == g.shape, key
        if key in zero:
            continue  # rounding noise on both sides, amplified by 1/σ: nothing to compare
        # A gradient that sums terms which cancel (softmax's rows into the last bias)
        # carries the terms' rounding: a tenth of the largest gradient is the least scale.
        scale = everything if key in cancelled else max(np.abs(g).max(), 0.1 * everything)
        if reference is None:
            error = np.abs(e_grads[key] - g).max()
            tolerance = NOISE[net.dtype] if key in cancelled else TOLERANCE[net.dtype]
            assert error <= tolerance * scale, f"{key}: {error:.3g} against {scale:.3g}"
        else:
            error = np.abs(e_grads[key] - true_grads[key]).max()
            layers_error = np.abs(g - true_grads[key]).max()
            tolerance = NOISE[net.dtype] if key in cancelled else TOLERANCE[net.dtype]
            assert error <= 10 * layers_error + tolerance * scale, (
                f"{key}: {error:.3g}, layers {layers_error:.3g}"
            )
    if reference is None:
        assert abs(e_loss - loss) <= 1e-12 * abs(loss)
        for (mean, var), (e_mean, e_var) in zip(stats, e_stats):
            np.testing.assert_allclose(e_mean, mean, rtol=1e-12, atol=1e-12 * np.abs(mean).max())
            np.testing.assert_allclose(e_var, var, rtol=1e-12, atol=1e-12 * np.abs(var).max())
    else:
        assert abs(e_loss - truth) <= 2 * abs(loss - truth) + 1e-5 * abs(truth)
        for (mean, var), (e_mean, e_var), (t_mean, t_var) in zip(stats, e_stats, true_stats):
            assert (
                np.abs(e_mean - t_mean).max()
                <= 2 * np.abs(mean - t_mean).max() + 1e-5 * np.abs(t_mean).max()
            )
            assert (
                np.abs(e_var - t_var).max()
                <= 2 * np.abs(var - t_var).max() + 1e-5 * np.abs(t_var).max()
            )


def assert_same_bits_on_any_thread_count(make, counts, most):
    """The loss and gradients of ``Step(net, threads=n)`` for each n of ``counts`` are the
    same bits; ``make()`` gives a fresh (net, x, t) each time, BLAS set to ``most``."""
    results = []
    with threadpool_limits(limits=most, user_api="blas"):
        for threads in counts:
            net, x, t = make()
            loss, grads = Step(net, threads=threads).loss_and_gradient(x, t)
            results.append((loss, {key: grad.copy() for key, grad in grads.items()}))
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        for key, grad in grads.items():
            np.testing.assert_array_equal(grad, results[0][1][key], err_msg=key)
