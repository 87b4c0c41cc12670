# ruff: noqa
# Reference: the book's DeepConvNet (its default sizes: W7 takes 64·4·4 values).
import sys, os
sys.path.append(os.pardir)
import pickle
import numpy as np
from common.layers import *

BOOK_CONV = [
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
]
WEIGHTED = (0, 2, 5, 7, 10, 12, 15, 18)  # where the Convolution and Affine layers sit


class DeepConvNet:
    def __init__(self, input_dim=(1, 28, 28), conv_param_1=BOOK_CONV[0], conv_param_2=BOOK_CONV[1],
                 conv_param_3=BOOK_CONV[2], conv_param_4=BOOK_CONV[3], conv_param_5=BOOK_CONV[4],
                 conv_param_6=BOOK_CONV[5], hidden_size=50, output_size=10):
        convs = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6]
        fan_ins = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3, 64 * 3 * 3, 64 * 4 * 4, hidden_size])
        scales = np.sqrt(2.0 / fan_ins)
        self.params = {}
        channels = input_dim[0]
        for i, conv in enumerate(convs):
            shape = (conv["filter_num"], channels, conv["filter_size"], conv["filter_size"])
            self.params["W" + str(i + 1)] = scales[i] * np.random.randn(*shape)
            self.params["b" + str(i + 1)] = np.zeros(conv["filter_num"])
            channels = conv["filter_num"]
        self.params["W7"] = scales[6] * np.random.randn(64 * 4 * 4, hidden_size)
        self.params["b7"] = np.zeros(hidden_size)
        self.params["W8"] = scales[7] * np.random.randn(hidden_size, output_size)
        self.params["b8"] = np.zeros(output_size)
        self.layers = []
        for i, conv in enumerate(convs):
            self.layers.append(Convolution(self.params["W" + str(i + 1)], self.params["b" + str(i + 1)],
                                           conv["stride"], conv["pad"]))
            self.layers.append(Relu())
            if i % 2 == 1:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
        self.layers += [Affine(self.params["W7"], self.params["b7"]), Relu(), Dropout(0.5),
                        Affine(self.params["W8"], self.params["b8"]), Dropout(0.5)]
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers:
            x = layer.forward(x, train_flg) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def accuracy(self, x, t, batch_size=100):
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        correct = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            y = np.argmax(self.predict(x[i * batch_size : (i + 1) * batch_size], train_flg=False), axis=1)
            correct += np.sum(y == t[i * batch_size : (i + 1) * batch_size])
        return correct / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, at in enumerate(WEIGHTED, start=1):
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
        for i, at in enumerate(WEIGHTED, start=1):
            self.layers[at].W, self.layers[at].b = self.params["W" + str(i)], self.params["b" + str(i)]
