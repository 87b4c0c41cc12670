"""The engine: any sequence of chainrule's layers ending in SoftmaxWithLoss as a training
step with reused buffers, proven equal to the layers by the tests.

The layers (:mod:`chainrule.layers`) are the book's and stay readable; every network's
``loss_and_gradient``, ``gradient`` and fit's evaluation run the same numbers here:

- :mod:`~chainrule.engine.plan` turns the layers into kernels, one per layer, applying
  what holds for any network (a ReLU after max pooling; a convolution computed in the
  order its pooling reads it);
- :mod:`~chainrule.engine.dense` and :mod:`~chainrule.engine.conv` are the kernels,
  :mod:`~chainrule.engine.loss` the loss; every matrix product goes through
  :func:`chainrule.blas.matmul`, whose numbers do not depend on the number of workers;
- :mod:`~chainrule.engine.step` runs them: no gradient for the network's input, the
  learning rate riding on backprop for plain SGD, the workers chosen by the tuner, a
  large batch in two halves side by side, and the layers themselves for anything it does
  not know;
- :mod:`~chainrule.engine.process` runs the second half in a forked process (Linux).
"""

from chainrule.engine.plan import parameter_names
from chainrule.engine.step import Step, layer_list

__all__ = ["Step", "layer_list", "parameter_names"]
