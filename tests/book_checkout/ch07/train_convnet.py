# ruff: noqa
# Chapter 7: a small SimpleConvNet trained by the Trainer, saved and loaded back.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from simple_convnet import SimpleConvNet
from common.trainer import Trainer

np.random.seed(7)
(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
x_train, t_train, x_test, t_test = x_train[:500], t_train[:500], x_test[:300], t_test[:300]
network = SimpleConvNet(input_dim=(1, 28, 28),
                        conv_param={"filter_num": 8, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=30, output_size=10, weight_init_std=0.01)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=2, mini_batch_size=100,
                  optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=200)
trainer.train()
network.save_params("params.pkl")
print("Saved Network Parameters!")
again = SimpleConvNet(input_dim=(1, 28, 28),
                      conv_param={"filter_num": 8, "filter_size": 5, "pad": 0, "stride": 1},
                      hidden_size=30, output_size=10)
again.load_params("params.pkl")
print("loaded:", again.accuracy(x_test, t_test))
