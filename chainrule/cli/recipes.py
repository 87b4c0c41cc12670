"""What ``chainrule train`` builds: the recipes for the flags not given, and the network
and optimiser that flag values ask for (``chainrule search`` builds its trials here too)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chainrule.cli.args import build_network

# What `chainrule train` does for a flag not given, by dataset. On the full sets: the
# book's recipe, 10,000 steps from TwoLayerNet's 0.01 initial scale. On the 4,000 embedded
# images that recipe overfits; He initialisation and a little weight decay, chapter 6's
# remedies, lift it (the figures: docs/differences.md).
BOOK_RECIPE = {"iters": 10_000, "init": None, "weight_decay": 0.0}
DEFAULT_RECIPE = {
    "mnist-5k": {"epochs": 60, "init": "he", "weight_decay": 1e-3},
    "mnist": BOOK_RECIPE,
    "fashion-mnist": BOOK_RECIPE,
}
# --model convnet (chapter 7's SimpleConvNet) when a flag is not given: the book's
# train_convnet.py recipe (Adam lr 0.001, batch 100, initial scale 0.01, 20 epochs on the
# full sets); on mnist-5k, CONVNET_5K_EPOCHS epochs (docs/performance.md gives time and accuracy).
CONVNET_5K_EPOCHS = 10
CONVNET_RECIPE = {
    "mnist-5k": {"epochs": CONVNET_5K_EPOCHS, "init": 0.01, "weight_decay": 0.0},
    "mnist": {"epochs": 20, "init": 0.01, "weight_decay": 0.0},
    "fashion-mnist": {"epochs": 20, "init": 0.01, "weight_decay": 0.0},
}
CONVNET_OPTIMIZER = "adam"
# --model deepconvnet (chapter 8's DeepConvNet): the same recipe, He initialisation
DEEPCONVNET_RECIPE = {name: {**r, "init": "he"} for name, r in CONVNET_RECIPE.items()}
RECIPES = {"mlp": DEFAULT_RECIPE, "convnet": CONVNET_RECIPE, "deepconvnet": DEEPCONVNET_RECIPE}
# Flags that only the fully connected networks take.
MLP_ONLY = ("hidden", "layers", "activation", "dropout", "batchnorm")
# --lr when not given: the book's chapter-5 recipe for SGD, each class's default otherwise.
DEFAULT_SGD_LR = 0.1

# A new run's setup for the flags not given. A resumed run takes its setup from the
# checkpoint instead, and must tell a flag given from one left out: so these flags'
# parser default is None, and a new run fills them in from here.
NEW_RUN_DEFAULTS = {
    "model": "mlp",
    "hidden": [50],
    "activation": "relu",
    "seed": 0,
    "dataset": "mnist-5k",
    "optimizer": "sgd",
    "batch_size": 100,
    "sampling": "shuffle",
    "dtype": "float32",
}


def train_description() -> str:
    """What ``chainrule train`` trains when no flag says otherwise, from the recipes."""
    small, book = DEFAULT_RECIPE["mnist-5k"], DEFAULT_RECIPE["mnist"]
    sizes = "-".join(map(str, [784, *NEW_RUN_DEFAULTS["hidden"], 10]))
    common = f"SGD lr {DEFAULT_SGD_LR:g}, batch {NEW_RUN_DEFAULTS['batch_size']}"
    return (
        f"Train by backpropagation. With no arguments: the book's {sizes} ReLU network as a "
        f"MultiLayerNet with init {small['init']} and weight decay {small['weight_decay']:g} "
        "(chapter 6's remedies: the book's recipe overfits the 4,000 embedded images), "
        f"{common}, {small['epochs']} epochs, on the embedded 5,000-image MNIST subset. "
        f"With --dataset mnist or fashion-mnist: the book's recipe, a TwoLayerNet with "
        f"initial scale 0.01 and no weight decay, {common}, {book['iters']:,} steps. "
        "With --model convnet: the book's SimpleConvNet and train_convnet.py recipe "
        f"(Adam lr 0.001, batch 100, initial scale 0.01; {CONVNET_5K_EPOCHS} epochs on "
        "mnist-5k, 20 on the full sets). --dropout and --batchnorm make the fully "
        "connected network chapter 6's MultiLayerNetExtend."
    )


def is_convnet(net) -> bool:
    from chainrule.networks import DeepConvNet, SimpleConvNet

    return isinstance(net, (SimpleConvNet, DeepConvNet))


def model_flag(net) -> str:
    """The --model value that builds a network of this class."""
    if not is_convnet(net):
        return "mlp"
    return "deepconvnet" if type(net).__name__ == "DeepConvNet" else "convnet"


def train_network(
    model: str = "mlp",
    hidden: Sequence[int] = (50,),
    *,
    activation: str = "relu",
    init: float | str | None = None,
    weight_decay: float = 0.0,
    dropout: float | None = None,
    batchnorm: bool = False,
    dtype: str = "float32",
    seed: int = 0,
):
    """The network ``chainrule train`` builds for these flag values (underscored): chapter
    8's DeepConvNet for ``deepconvnet``, chapter 7's SimpleConvNet for ``convnet``; for
    ``mlp``, a MultiLayerNetExtend with ``dropout`` or ``batchnorm``, else the book's
    TwoLayerNet for one ReLU hidden layer without weight decay, else a MultiLayerNet.
    ``init`` None is each class's book default (0.01 for one hidden layer, else He or
    Xavier by activation)."""
    from chainrule.networks import DeepConvNet, MultiLayerNetExtend, SimpleConvNet

    if model == "deepconvnet":  # chapter 8's; its He initialisation is the book's
        return DeepConvNet((1, 28, 28), dtype=dtype, seed=seed)
    if model == "convnet":
        return SimpleConvNet(
            (1, 28, 28), hidden_size=100, output_size=10, weight_init_std=init,
            dtype=dtype, seed=seed,
        )  # fmt: skip
    if dropout is None and not batchnorm:
        return build_network(
            list(hidden), activation=activation, init=init, weight_decay=weight_decay,
            dtype=dtype, seed=seed,
        )  # fmt: skip
    return MultiLayerNetExtend(
        784,
        list(hidden),
        10,
        activation=activation,
        weight_init_std=activation if init is None else init,
        weight_decay_lambda=weight_decay,
        use_dropout=dropout is not None,
        dropout_ration=0.5 if dropout is None else dropout,
        use_batchnorm=bool(batchnorm),
        dtype=np.dtype(dtype),
        seed=seed,
    )


def optimizer_for(name: str, lr: float | None):
    """The optimiser ``--optimizer name --lr lr`` asks for (SGD's lr: DEFAULT_SGD_LR)."""
    from chainrule.optim import make_optimizer

    if lr is None and name == "sgd":
        lr = DEFAULT_SGD_LR
    return make_optimizer(name, **({} if lr is None else {"lr": lr}))


def network_and_optimizer(settings: dict):
    """The network and optimiser that ``chainrule train`` builds from these flag values.

    ``settings`` names them as the flags do, with underscores: ``hidden`` (a list of
    sizes, or one size repeated ``layers`` times), ``activation``, ``init``,
    ``weight_decay``, ``optimizer``, ``lr``, ``dtype``, ``seed``; a missing one (or None)
    takes train's default. ``chainrule search`` builds its trials here too, so that the
    train command it prints for a trial builds the very same network.
    """
    hidden = settings["hidden"]
    hidden = [hidden] * settings.get("layers", 1) if isinstance(hidden, int) else list(hidden)
    net = train_network(
        "mlp",
        hidden,
        activation=settings.get("activation") or "relu",
        init=settings.get("init"),
        weight_decay=settings.get("weight_decay") or 0.0,
        dtype=settings.get("dtype") or "float32",
        seed=settings.get("seed", 0),
    )
    return net, optimizer_for(settings.get("optimizer") or "sgd", settings.get("lr"))
