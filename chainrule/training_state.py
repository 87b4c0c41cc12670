"""A network's whole training state in one checkpoint file, and back.

``save_training(path, network, optimizer, step=..., history=...)`` writes what resuming
needs, for any of chainrule's networks (MultiLayerNet, TwoLayerNet, MultiLayerNetExtend,
SimpleConvNet, DeepConvNet, Sequential of chainrule's layers): the parameters; in the
description (``meta``), the network's ``config()``, batch normalisation's running
statistics, the dropout masks' random generator state, the optimiser's name and
hyperparameters, and the History; in the file's optimiser members, its state.
``load_training(path)`` rebuilds them all: a run resumed from it with
:func:`chainrule.train.fit` (``resume=Resume(history, step)``) computes the numbers the
uninterrupted run would, bit for bit. ``chainrule train --save`` and ``--resume`` go
through these functions.

The file is a :mod:`chainrule.checkpoint` (format version 2): this module adds the
description's entries ``network``, ``running_stats``, ``dropout_rng``, ``optimizer`` and
``history`` on top of it. The low-level pair, ``save_checkpoint``/``load_checkpoint``,
sits in that module, which the networks themselves import; building a network from a
description needs :mod:`chainrule.networks`, hence this module beside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import __version__
from chainrule.checkpoint import (
    Checkpoint,
    ExpectedParams,
    check_params_match,
    load_checkpoint,
    save_checkpoint,
)
from chainrule.description import NETWORK, check_description, described_params
from chainrule.errors import ArgumentError, CheckpointError
from chainrule.layers import BatchNormalization, Dropout
from chainrule.schema import Invalid

__all__ = [
    "TrainingState",
    "layer_state",
    "load_training",
    "restore_network",
    "restore_training",
    "save_training",
]

#: The description entries this module writes; a caller's ``meta`` may not use them.
RESERVED = ("network", "running_stats", "dropout_rng", "optimizer", "history")


@dataclass
class TrainingState:
    """What :func:`load_training` restores.

    Attributes:
        network: the network, with the saved weights, running statistics and dropout
            generator state.
        optimizer: the optimiser with its saved state, or None if none was saved.
        step: the training steps done (``Resume(history, step)`` to resume with ``fit``).
        history: the saved :class:`chainrule.train.History`, or None.
        meta: the whole description, the caller's own entries included.
    """

    network: Any
    optimizer: Any = None
    step: int = 0
    history: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def layer_state(network: Any) -> dict[str, Any]:
    """The description entries for what a network holds beside its parameters:
    ``running_stats`` (each batch normalisation layer's running mean and variance, once
    a training forward has set them) and ``dropout_rng`` (each Dropout layer's generator
    state, so that a resumed run draws the masks the uninterrupted one would); an entry
    only where the network has such layers."""
    layers = getattr(network, "layers", {})
    stats = {
        name: {"running_mean": layer.running_mean, "running_var": layer.running_var}
        for name, layer in layers.items()
        if isinstance(layer, BatchNormalization) and layer.running_mean is not None
    }
    masks = {
        name: layer.rng.bit_generator.state
        for name, layer in layers.items()
        if isinstance(layer, Dropout)
    }
    return {
        **({"running_stats": stats} if stats else {}),
        **({"dropout_rng": masks} if masks else {}),
    }


def save_training(
    path: str | os.PathLike[str],
    network: Any,
    optimizer: Any = None,
    *,
    step: int = 0,
    history: Any = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``network`` (and ``optimizer``, ``step``, ``history`` when given) to ``path``
    atomically, as :func:`load_training` reads it back; return the path.

    ``meta`` holds the caller's own JSON-serialisable entries (``chainrule train`` keeps
    its run's settings under ``train``); it may not use the names in :data:`RESERVED`.

    Raises:
        ArgumentError: ``meta`` uses a reserved name; or (from ``network.config()``) a
            Sequential holds a layer that is not one of chainrule's.
        TypeError, OSError: as :func:`chainrule.checkpoint.save_checkpoint`.
    """
    taken = sorted(set(meta or {}) & set(RESERVED))
    if taken:
        raise ArgumentError(f"save_training: meta may not hold {taken}; this function writes them")
    description: dict[str, Any] = {"network": network.config(), **(meta or {})}
    if optimizer is not None:
        description["optimizer"] = {"name": optimizer.name, **optimizer.hyperparams}
    if history is not None:
        description["history"] = history.to_dict()
    description.update(layer_state(network), chainrule_version=__version__)
    state = optimizer.state_dict() if optimizer is not None else None
    return save_checkpoint(path, network.params, optimizer_state=state, step=step, meta=description)


def load_training(
    path: str | os.PathLike[str], *, expected_params: ExpectedParams | None = None
) -> TrainingState:
    """The network, optimiser, step and History that :func:`save_training` wrote to
    ``path`` (or ``chainrule train --save``), each restored; see :func:`restore_training`.

    Before any array is read and before any network is built, the description is checked
    against :data:`chainrule.description.TRAINING_STATE`, and the parameters the network
    it gives implies against the stored arrays' headers: a corrupt or hostile file cannot
    ask for a network larger than its own arrays. ``expected_params`` (as
    :func:`chainrule.checkpoint.load_checkpoint` takes it) replaces that check with the
    caller's own (the CLI's adds its run's entry).

    Raises:
        CheckpointError: as ``load_checkpoint`` and ``restore_training``, or a description
            that breaks the schema; one line that names the file.
    """
    where = str(path)

    def described(meta: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
        check_description(meta, where)
        return described_params(meta["network"])

    checkpoint = load_checkpoint(path, expected_params=expected_params or described)
    return restore_training(checkpoint, where)


def restore_training(checkpoint: Checkpoint, path: str) -> TrainingState:
    """The training state a loaded checkpoint holds: its network (:func:`restore_network`),
    and where the description has them, its optimiser (with the saved state) and History
    (which must hold one loss per step)."""
    from chainrule.optim import make_optimizer
    from chainrule.train import History

    network = restore_network(checkpoint, path)
    meta, optimizer, history = checkpoint.meta, None, None
    try:
        if "optimizer" in meta:
            hyper = dict(meta["optimizer"])
            optimizer = make_optimizer(hyper.pop("name"), **hyper)
        if "history" in meta:
            history = History.from_dict(meta["history"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: not a checkpoint written by 'chainrule train' ({error})"
        ) from None
    if history is not None and len(history.losses) != checkpoint.step:
        raise CheckpointError(
            f"{path}: its history holds {len(history.losses)} losses for {checkpoint.step} steps"
        )
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    return TrainingState(network, optimizer, checkpoint.step, history, meta)


def restore_network(checkpoint: Checkpoint, path: str) -> Any:
    """The network a checkpoint describes, holding the checkpoint's weights (which must be
    finite: NaN weights would evaluate to ``loss nan`` as if that were a result), running
    statistics and dropout generator state. ``path`` names the file in errors.

    The network's description is checked against :data:`chainrule.description.NETWORK`,
    and the parameters it implies against the checkpoint's, before the network is built:
    whatever loaded the checkpoint, its description cannot ask for more than it holds."""
    from chainrule.networks import network_from_config

    _check_described_network(checkpoint, path)
    try:
        network = network_from_config(checkpoint.meta["network"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: no network description in this checkpoint ({error})"
        ) from None
    broken = [name for name, value in checkpoint.params.items() if not np.isfinite(value).all()]
    if broken:
        raise CheckpointError(
            f"{path}: the weights {', '.join(broken[:5])} hold NaN or infinity (a diverged "
            "run); refused"
        )
    # Against the built network too (its shapes, not only the described ones): the check
    # names the file and every mismatch, so the weights are copied in directly.
    check_params_match(network.params, checkpoint.params, path)
    for name, param in network.params.items():
        param[...] = checkpoint.params[name]  # in place: the layers hold these arrays
    _restore_running_stats(network, checkpoint.meta.get("running_stats", {}), path)
    _restore_dropout_rng(network, checkpoint.meta.get("dropout_rng", {}), path)
    return network


def _check_described_network(checkpoint: Checkpoint, path: str) -> None:
    """CheckpointError unless the checkpoint's ``network`` description follows the schema
    and implies exactly its stored parameters (names, shapes, dtypes)."""
    config = checkpoint.meta.get("network")
    try:
        NETWORK(config, "description.network")
    except Invalid as invalid:
        raise CheckpointError(
            f"{path}: no network description in this checkpoint: {invalid.field} {invalid.why}"
        ) from None
    # Zero-strided views: each described parameter's shape and dtype, without its memory.
    described = {
        name: np.broadcast_to(np.zeros((), dtype), shape)
        for name, (shape, dtype) in described_params(config).items()
    }
    check_params_match(described, checkpoint.params, path)


def _restore_running_stats(network: Any, saved: Mapping[str, Any], path: str) -> None:
    """Each batch normalisation layer's running mean and variance, as saved."""
    for name, stats in saved.items():
        layer = network.layers.get(name)
        if layer is None or not hasattr(layer, "running_mean"):
            raise CheckpointError(f"{path}: running statistics for {name}, not in the network")
        width = layer.gamma.shape
        for key in ("running_mean", "running_var"):
            if np.shape(stats[key]) != width:
                raise CheckpointError(
                    f"{path}: {name}'s {key} has {len(stats[key])} values, the layer {width[0]}"
                )
        layer.running_mean = np.asarray(stats["running_mean"], dtype=network.dtype)
        layer.running_var = np.asarray(stats["running_var"], dtype=network.dtype)


def _restore_dropout_rng(network: Any, saved: Mapping[str, Any], path: str) -> None:
    """Each Dropout layer's generator state, as saved (a network's layers may share one
    generator: it is then set to the same state once per layer)."""
    for name, state in saved.items():
        layer = network.layers.get(name)
        if layer is None or not hasattr(layer, "rng"):
            raise CheckpointError(f"{path}: a dropout random state for {name}, not in the network")
        try:
            layer.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"{path}: the random state of {name}'s dropout masks is not one NumPy reads "
                f"({error})"
            ) from None
