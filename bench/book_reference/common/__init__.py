# From "Deep Learning from Scratch" (oreilly-japan/deep-learning-from-scratch), MIT licence,
# Copyright (c) 2016 Koki Saitoh. A benchmark baseline for bench/bench_book_layers.py, not
# chainrule code; the parts the book's SimpleConvNet and DeepConvNet use, unchanged.
# ruff: noqa
