# ruff: noqa
# Reference: the book's SimpleConvNet.
import sys, os
sys.path.append(os.pardir)
import pickle
import numpy as np
from common.layers import *


class SimpleConvNet:
    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                 hidden_size=100, output_size=10, weight_init_std=0.01):
        fn, fs = conv_param["filter_num"], conv_param["filter_size"]
        conv_size = (input_dim[1] - fs + 2 * conv_param["pad"]) / conv_param["stride"] + 1
        pooled = int(fn * (conv_size / 2) * (conv_size / 2))
        self.params = {}
        self.params["W1"] = weight_init_std * np.random.randn(fn, input_dim[0], fs, fs)
        self.params["b1"] = np.zeros(fn)
        self.params["W2"] = weight_init_std * np.random.randn(pooled, hidden_size)
        self.params["b2"] = np.zeros(hidden_size)
        self.params["W3"] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params["b3"] = np.zeros(output_size)
        self.layers = [
            Convolution(self.params["W1"], self.params["b1"], conv_param["stride"], conv_param["pad"]),
            Relu(), Pooling(pool_h=2, pool_w=2, stride=2),
            Affine(self.params["W2"], self.params["b2"]), Relu(),
            Affine(self.params["W3"], self.params["b3"]),
        ]
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x, t, batch_size=100):
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        correct = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            y = np.argmax(self.predict(x[i * batch_size : (i + 1) * batch_size]), axis=1)
            correct += np.sum(y == t[i * batch_size : (i + 1) * batch_size])
        return correct / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, at in enumerate((0, 3, 5), start=1):
            grads["W" + str(i)], grads["b" + str(i)] = self.layers[at].dW, self.layers[at].db
        return grads

    def save_params(self, file_name="params.pkl"):
        with open(file_name, "wb") as f:
            pickle.dump(dict(self.params), f)

    def load_params(self, file_name="params.pkl"):
        with open(file_name, "rb") as f:
            params = pickle.load(f)
        for key, val in params.items():
            self.params[key] = val
        for i, at in enumerate((0, 3, 5), start=1):
            self.layers[at].W, self.layers[at].b = self.params["W" + str(i)], self.params["b" + str(i)]
