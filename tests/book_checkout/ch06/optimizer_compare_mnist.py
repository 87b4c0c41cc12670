# ruff: noqa
# Chapter 6: the six optimisers on the same network and batches.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.util import smooth_curve, shuffle_dataset
from common.multi_layer_net import MultiLayerNet
from common.optimizer import *

np.random.seed(6)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = shuffle_dataset(x_train, t_train)
print("data", x_train.dtype, x_train.shape, t_train.dtype, t_train.shape)
train_size, batch_size, max_iterations = x_train.shape[0], 64, 12
optimizers = {"SGD": SGD(), "Momentum": Momentum(), "Nesterov": Nesterov(lr=0.01),
              "AdaGrad": AdaGrad(), "RMSprop": RMSprop(lr=0.001), "Adam": Adam()}
networks, train_loss = {}, {}
for key in optimizers:
    networks[key] = MultiLayerNet(input_size=784, hidden_size_list=[40, 30], output_size=10,
                                  weight_decay_lambda=0.001)
    train_loss[key] = []
for i in range(max_iterations):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    for key in optimizers:
        grads = networks[key].gradient(x_batch, t_batch)
        optimizers[key].update(networks[key].params, grads)
        train_loss[key].append(networks[key].loss(x_batch, t_batch))
for key in optimizers:
    print(key + ":", " ".join(str(v) for v in train_loss[key]))
    print(key + " smooth:", " ".join(str(v) for v in smooth_curve(train_loss[key])))
    print(key + " accuracy:", networks[key].accuracy(x_test, t_test))
