# ruff: noqa
# Reference: the book's load_mnist (shapes, dtypes), reading chainrule's mnist-5k arrays.
import os
import numpy as np


def _one_hot(labels):
    rows = np.zeros((labels.size, 10))
    for i, label in enumerate(labels):
        rows[i, label] = 1
    return rows


def load_mnist(normalize=True, flatten=True, one_hot_label=False):
    with np.load(os.environ["BOOK_MNIST_NPZ"]) as npz:
        data = {key: npz[key] for key in ("x_train", "t_train", "x_test", "t_test")}
    for key in ("x_train", "x_test"):
        if normalize:
            data[key] = data[key].astype(np.float32)
            data[key] /= 255.0
        if not flatten:
            data[key] = data[key].reshape(-1, 1, 28, 28)
    if one_hot_label:
        data["t_train"], data["t_test"] = _one_hot(data["t_train"]), _one_hot(data["t_test"])
    return (data["x_train"], data["t_train"]), (data["x_test"], data["t_test"])
