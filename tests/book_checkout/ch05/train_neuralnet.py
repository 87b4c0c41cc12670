# ruff: noqa
# Chapter 5: the layered TwoLayerNet trained by backprop, a few steps.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from two_layer_net import TwoLayerNet

np.random.seed(55)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
iters_num, train_size, batch_size, learning_rate = int(sys.argv[1]), x_train.shape[0], 100, 0.1
iter_per_epoch = max(train_size / batch_size, 1)
for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]
    print("loss:" + str(network.loss(x_batch, t_batch)))
    if i % iter_per_epoch == 0:
        print(network.accuracy(x_train, t_train), network.accuracy(x_test, t_test))
print("final:", network.accuracy(x_train, t_train), network.accuracy(x_test, t_test))
