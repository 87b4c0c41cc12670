# ruff: noqa
# Chapter 3: inference with the weights in sample_weight.pkl (pickled as the book's are).
import sys, os
sys.path.append(os.pardir)
import numpy as np
import pickle
from dataset.mnist import load_mnist
from common.functions import sigmoid, softmax


def get_data():
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, flatten=True, one_hot_label=False)
    return x_test, t_test


def init_network():
    with open("sample_weight.pkl", "rb") as f:
        return pickle.load(f)


def predict(network, x):
    a1 = np.dot(x, network["W1"]) + network["b1"]
    z1 = sigmoid(a1)
    a2 = np.dot(z1, network["W2"]) + network["b2"]
    z2 = sigmoid(a2)
    return softmax(np.dot(z2, network["W3"]) + network["b3"])


x, t = get_data()
print("data", x.dtype, x.shape, t.dtype, t.shape)
network = init_network()
accuracy_cnt = 0
for i in range(len(x)):
    p = np.argmax(predict(network, x[i]))
    if p == t[i]:
        accuracy_cnt += 1
print("Accuracy:" + str(float(accuracy_cnt) / len(x)))
print("y[0]:", " ".join(str(v) for v in predict(network, x[0])))
