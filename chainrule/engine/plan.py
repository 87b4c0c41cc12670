"""From a sequence of layers to the engine's kernels, and the book's names of their
parameters.

:func:`make_plan` gives one kernel per layer it knows (exactly these classes: a subclass
may compute something else), or None, and then the layers compute the step. On the
way it applies what holds for any network:

- a ReLU before a max pooling moves after it: the maximum of ReLUs is the ReLU of the
  maximum, and the gradients are the same (a window whose maximum is not positive passes
  nothing back either way); the ReLU then works on a quarter of the values (2×2);
- a convolution followed by a pooling whose stride is its square window becomes one
  kernel that computes its outputs in the order the pooling reads them
  (:mod:`chainrule.engine.conv`), and a ReLU after the convolution (or that pooling)
  joins the kernel too, applied to each chunk of the batch while it is in the cache;
- ReLU and Dropout write over their input, except the network's own input: the kernel
  before them never needs its output where they change it (they zero it, and zero the
  gradient there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from chainrule.engine.buffers import Buffers
from chainrule.engine.conv import ConvKernel
from chainrule.engine.dense import (
    AffineKernel,
    BatchNormKernel,
    DropoutKernel,
    Kernel,
    ReluKernel,
    SigmoidKernel,
)
from chainrule.engine.pool import PoolKernel
from chainrule.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)

__all__ = ["make_plan", "parameter_names"]

_KERNELS = {
    Affine: AffineKernel,
    BatchNormalization: BatchNormKernel,
    Convolution: ConvKernel,
    Dropout: DropoutKernel,
    Pooling: PoolKernel,
    Relu: ReluKernel,
    Sigmoid: SigmoidKernel,
}
_IN_PLACE = (ReluKernel, DropoutKernel)


def parameter_names(layers: Iterable[Any]) -> Iterator[tuple[str, Any, str]]:
    """``(name, layer, attribute)`` of each parameter, named as the book names them:
    ``W1, b1, W2, …`` in the order of the layers with weights (Affine, Convolution),
    ``gamma1, beta1, …`` in the order of the batch normalisations."""
    weighted = normalised = 0
    for layer in layers:
        if isinstance(layer, (Affine, Convolution)):
            weighted += 1
            yield f"W{weighted}", layer, "W"
            yield f"b{weighted}", layer, "b"
        elif isinstance(layer, BatchNormalization):
            normalised += 1
            yield f"gamma{normalised}", layer, "gamma"
            yield f"beta{normalised}", layer, "beta"


def make_plan(layers: list[Any], dtype: np.dtype, scratch: Buffers) -> list[Kernel] | None:
    """The kernels that compute ``layers`` on arrays of ``dtype``, or None; the
    convolutions share ``scratch`` for their chunks' arrays."""
    if not layers or any(type(layer) not in _KERNELS for layer in layers):
        return None
    for _, layer, attribute in parameter_names(layers):
        if getattr(layer, attribute).dtype != dtype:
            return None
    for layer in layers:
        if isinstance(layer, BatchNormalization):
            stats = (layer.running_mean, layer.running_var)
            if any(s is not None and np.asarray(s).dtype != dtype for s in stats):
                return None
    order = list(layers)
    for i in range(len(order) - 1):
        if type(order[i]) is Relu and type(order[i + 1]) is Pooling:
            order[i], order[i + 1] = order[i + 1], order[i]
    kernels: list[Kernel] = []
    i = 0
    while i < len(order):
        if type(order[i]) is Convolution:
            kernel, i = _conv_kernel(order, i, scratch)
        else:
            kernel, i = _KERNELS[type(order[i])](order[i]), i + 1
            kernel.in_place = bool(kernels) and isinstance(kernel, _IN_PLACE)
        kernels.append(kernel)
    return kernels


def _conv_kernel(order: list[Any], i: int, scratch: Buffers) -> tuple[ConvKernel, int]:
    """The kernel of the convolution ``order[i]``, with the pooling and the ReLU after it
    that it can take in, and the index of the layer after those."""
    layer, i = order[i], i + 1
    pool = order[i] if i < len(order) and _pools_in_blocks(order[i]) else None
    i += pool is not None
    relu = i < len(order) and type(order[i]) is Relu
    return ConvKernel(layer, pool=pool, scratch=scratch, relu=relu), i + relu


def _pools_in_blocks(layer: Any) -> bool:
    """A max pooling whose stride is its square window, without padding."""
    return type(layer) is Pooling and layer.pool_h == layer.pool_w == layer.stride and not layer.pad
