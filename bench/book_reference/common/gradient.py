# From "Deep Learning from Scratch" (oreilly-japan/deep-learning-from-scratch), MIT licence,
# Copyright (c) 2016 Koki Saitoh. A benchmark baseline for bench/bench_book_layers.py, not
# chainrule code; the parts the book's SimpleConvNet and DeepConvNet use, unchanged.
# ruff: noqa
import numpy as np


def numerical_gradient(f, x):
    h = 1e-4
    grad = np.zeros_like(x)

    it = np.nditer(x, flags=['multi_index'], op_flags=['readwrite'])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)

        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2*h)

        x[idx] = tmp_val
        it.iternext()

    return grad
