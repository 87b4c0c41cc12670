"""Stand-in for the book's ``ch08/deep_convnet.py``."""

from chainrule.book.networks import DeepConvNet

__all__ = ["DeepConvNet"]
