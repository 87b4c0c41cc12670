"""Stand-in for the book's ``ch07/simple_convnet.py``."""

from chainrule.book.networks import SimpleConvNet

__all__ = ["SimpleConvNet"]
