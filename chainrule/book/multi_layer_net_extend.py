"""Stand-in for the book's ``common/multi_layer_net_extend.py``."""

from chainrule.book.networks import MultiLayerNetExtend

__all__ = ["MultiLayerNetExtend"]
