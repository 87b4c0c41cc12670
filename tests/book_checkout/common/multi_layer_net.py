# ruff: noqa
# Reference: the book's MultiLayerNet.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from collections import OrderedDict
from common.layers import *
from common.gradient import numerical_gradient


def book_scale(weight_init_std, fan_in):
    if str(weight_init_std).lower() in ("relu", "he"):
        return np.sqrt(2.0 / fan_in)
    if str(weight_init_std).lower() in ("sigmoid", "xavier"):
        return np.sqrt(1.0 / fan_in)
    return weight_init_std


class MultiLayerNet:
    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0):
        self.hidden_layer_num = len(hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        sizes = [input_size] + hidden_size_list + [output_size]
        self.params = {}
        for idx in range(1, len(sizes)):
            scale = book_scale(weight_init_std, sizes[idx - 1])
            self.params["W" + str(idx)] = scale * np.random.randn(sizes[idx - 1], sizes[idx])
            self.params["b" + str(idx)] = np.zeros(sizes[idx])
        kinds = {"sigmoid": Sigmoid, "relu": Relu}
        self.layers = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 2):
            self.layers["Affine" + str(idx)] = Affine(self.params["W" + str(idx)], self.params["b" + str(idx)])
            if idx <= self.hidden_layer_num:
                self.layers["Activation_function" + str(idx)] = kinds[activation]()
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        decay = 0
        for idx in range(1, self.hidden_layer_num + 2):
            decay += 0.5 * self.weight_decay_lambda * np.sum(self.params["W" + str(idx)] ** 2)
        return self.last_layer.forward(self.predict(x), t) + decay

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x, t):
        loss_W = lambda W: self.loss(x, t)
        return {key: numerical_gradient(loss_W, p) for key, p in self.params.items()}

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers["Affine" + str(idx)]
            grads["W" + str(idx)] = affine.dW + self.weight_decay_lambda * affine.W
            grads["b" + str(idx)] = affine.db
        return grads
