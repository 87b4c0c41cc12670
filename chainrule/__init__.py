"""chainrule: backpropagation through a computational graph of layers.

The layers, losses and networks of chapter 5 of "Deep Learning from Scratch", with the
book's names and signatures, a recorded computational graph, and gradient checking.
"""

from chainrule.errors import ChainruleError
from chainrule.graph import Graph, Value, set_notebook_view
from chainrule.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss
from chainrule.networks import MultiLayerNet, TwoLayerNet
from chainrule.viz.diagram import notebook_view

# A Graph shows itself as a picture in Jupyter; the drawing lives in viz, above graph.py.
set_notebook_view(notebook_view)

__version__ = "0.1.0"

__all__ = [
    "AddLayer",
    "Affine",
    "ChainruleError",
    "Graph",
    "MulLayer",
    "MultiLayerNet",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "TwoLayerNet",
    "Value",
    "__version__",
]
