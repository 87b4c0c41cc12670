# ruff: noqa
# Chapter 8: the deep network, a few steps of the Trainer, saved and loaded back.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from deep_convnet import DeepConvNet
from common.trainer import Trainer

np.random.seed(8)
(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
x_train, t_train, x_test, t_test = x_train[:100], t_train[:100], x_test[:100], t_test[:100]
network = DeepConvNet()
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=1, mini_batch_size=25,
                  optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=100)
trainer.train()
network.save_params("deep_convnet_params.pkl")
print("Saved Network Parameters!")
again = DeepConvNet()
again.load_params("deep_convnet_params.pkl")
print("loaded:", again.accuracy(x_test, t_test))
