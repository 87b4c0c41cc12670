# ruff: noqa
# Chapter 6: dropout, batch normalisation and weight decay, trained by the Trainer.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.trainer import Trainer

np.random.seed(66)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = x_train[:300], t_train[:300]
network = MultiLayerNetExtend(input_size=784, hidden_size_list=[40, 40], output_size=10,
                              weight_decay_lambda=0.01, use_dropout=True, dropout_ration=0.2,
                              use_batchnorm=True)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=3, mini_batch_size=100,
                  optimizer=sys.argv[1], optimizer_param={"lr": 0.01}, verbose=True)
trainer.train()
lists = trainer.train_acc_list + trainer.test_acc_list
print("lists:", " ".join(str(v) for v in lists), len(trainer.train_loss_list))
