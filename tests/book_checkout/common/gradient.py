# ruff: noqa
# Reference: the book's numerical_gradient(f, x): f takes x.
import numpy as np


def numerical_gradient(f, x):
    h = 1e-4
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        kept = x[idx]
        x[idx] = float(kept) + h
        above = f(x)
        x[idx] = kept - h
        below = f(x)
        grad[idx] = (above - below) / (2 * h)
        x[idx] = kept
    return grad
