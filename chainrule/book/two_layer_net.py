"""Stand-in for the book's ``ch05/two_layer_net.py``."""

from chainrule.book.networks import TwoLayerNet

__all__ = ["TwoLayerNet"]
