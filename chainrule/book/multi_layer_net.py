"""Stand-in for the book's ``common/multi_layer_net.py``."""

from chainrule.book.networks import MultiLayerNet

__all__ = ["MultiLayerNet"]
