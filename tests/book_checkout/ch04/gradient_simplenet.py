# ruff: noqa
# Chapter 4: the numerical gradient of a 2×3 network's loss, the book's f(W) form.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.functions import softmax, cross_entropy_error
from common.gradient import numerical_gradient


class simpleNet:
    def __init__(self):
        self.W = np.random.randn(2, 3)

    def predict(self, x):
        return np.dot(x, self.W)

    def loss(self, x, t):
        return cross_entropy_error(softmax(self.predict(x)), t)


np.random.seed(0)
x, t = np.array([0.6, 0.9]), np.array([0, 0, 1])
net = simpleNet()
f = lambda w: net.loss(x, t)
print("loss:", f(net.W))
print("dW:", " ".join(str(v) for v in numerical_gradient(f, net.W).ravel()))
