"""chainrule: backpropagation through a computational graph of layers."""

__version__ = "0.1.0"
