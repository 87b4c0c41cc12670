"""Stand-ins for the modules of the book's repository, made of chainrule.

``chainrule run SCRIPT`` runs a script of a checkout of the book's repository
(oreilly-japan/deep-learning-from-scratch and its translations) with these modules in
place of the book's: the script's ``from common.layers import *`` gets
:mod:`chainrule.book.layers`, and so on (see :data:`STAND_INS`). Each exports the names
the book's module does and computes what the book's computes: its networks draw their
initial weights, their batches and their dropout masks from NumPy's global generator in
the book's order, and report the book's loss (its ``+ 1e-7`` inside the log included), so
a seeded script prints the same numbers on either; the training itself runs on
chainrule's layers and training step.
"""

from __future__ import annotations

__all__ = ["BOOK_LAYERS_KEEPS", "CHAPTER_MODULES", "STAND_INS"]

# The book's module -> the chainrule module that stands in for it.
STAND_INS = {
    "common.functions": "chainrule.book.functions",
    "common.gradient": "chainrule.book.gradient",
    "common.layers": "chainrule.book.layers",
    "common.util": "chainrule.book.util",
    "common.optimizer": "chainrule.book.optimizer",
    "common.trainer": "chainrule.book.trainer",
    "common.multi_layer_net": "chainrule.book.multi_layer_net",
    "common.multi_layer_net_extend": "chainrule.book.multi_layer_net_extend",
    "dataset.mnist": "chainrule.book.mnist",
    "two_layer_net": "chainrule.book.two_layer_net",
    "simple_convnet": "chainrule.book.simple_convnet",
    "deep_convnet": "chainrule.book.deep_convnet",
}

# A chapter-local module name means different networks in different chapters (ch04's
# two_layer_net is a sigmoid network with numerical gradients, ch05's is made of
# layers): each stands in only for the scripts of its own chapter folder.
CHAPTER_MODULES = {"two_layer_net": "ch05", "simple_convnet": "ch07", "deep_convnet": "ch08"}

# What --book-layers keeps from the checkout: the book's network classes, which then run
# on chainrule's layers.
BOOK_LAYERS_KEEPS = frozenset(
    {"common.multi_layer_net", "common.multi_layer_net_extend", *CHAPTER_MODULES}
)
