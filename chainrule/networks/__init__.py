"""The book's networks, built from its layers, and ``Sequential`` for a learner's own.

``MultiLayerNet`` is ``(Affine → activation) × hidden layers → Affine → SoftmaxWithLoss``;
``TwoLayerNet`` is the one-hidden-layer ReLU case with the book's 0.01 initial scale.
Chapter 6's ``MultiLayerNetExtend`` adds batch normalisation and dropout to it, chapter
7's ``SimpleConvNet`` is ``Conv → ReLU → Pool → Affine → ReLU → Affine`` and chapter 8's
``DeepConvNet`` three stages of ``Conv → ReLU → Conv → ReLU → Pool`` and two Affine
layers with dropout. ``params`` holds the very arrays the layers use, so an optimiser that
updates them in place trains the network. Every network computes in float64 unless told
otherwise, as the book does.

Shapes: ``x`` is (N, input_size) or any (N, ...) with input_size values per sample, or
images (N, C, H, W) for the convolutional networks; ``t`` is (N,) integer labels or
(N, output_size) one-hot rows.

Two ways to the same gradients: ``loss_and_gradient_by_layers`` walks the layers
backwards, as the book's ``gradient`` does; ``loss_and_gradient`` and ``gradient``, the
training step, run the engine (:mod:`chainrule.engine`), which computes the same numbers
in buffers reused from step to step (the tests hold the two equal), and return copies
that stay valid. ``predict_fast``, what evaluation during training runs, is the engine's
forward. Everything else (``predict``, ``loss``, ``accuracy``, ``record``,
``numerical_gradient``) runs the layers.

Every network shares one set of methods (:mod:`chainrule.networks.base`); the modules
hold the fully connected networks (``mlp``), the convolutional ones (``convnets``),
``Sequential`` (``sequential``) and :func:`network_from_config` (``config``).
"""

# The private names some callers import from here, as when networks was one module
from chainrule.networks.base import _accuracy_in_batches as _accuracy_in_batches
from chainrule.networks.base import _LayerNetwork as _LayerNetwork
from chainrule.networks.config import network_from_config
from chainrule.networks.convnets import DeepConvNet, SimpleConvNet
from chainrule.networks.mlp import ACTIVATIONS, MultiLayerNet, MultiLayerNetExtend, TwoLayerNet
from chainrule.networks.sequential import Sequential

__all__ = [
    "ACTIVATIONS",
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Sequential",
    "SimpleConvNet",
    "TwoLayerNet",
    "network_from_config",
]
