"""The `Literal` types the command line checks list exactly the names the code accepts."""

from __future__ import annotations

from typing import get_args

import pytest

from lightning_cnn.data.normalization import NORMALIZE_NAMES as _NORMALIZE
from lightning_cnn.data.normalization import NormalizeName
from lightning_cnn.losses import LOSSES, LossName
from lightning_cnn.models.transfer import FINETUNE_NAMES as _FINETUNE
from lightning_cnn.models.transfer import FinetuneName
from lightning_cnn.nn import (
    ACTIVATIONS,
    GLOBAL_POOLS,
    INITS,
    NORMS,
    POOLS,
    ActivationName,
    GlobalPoolName,
    InitName,
    NormName,
    PoolName,
)
from lightning_cnn.optim import OPTIMIZERS, SCHEDULERS, TIMM_OPTIMIZER_NAMES, OptimizerName, SchedulerName


@pytest.mark.parametrize(
    ("literal", "names"),
    [
        (ActivationName, ACTIVATIONS),
        (PoolName, POOLS),
        (GlobalPoolName, GLOBAL_POOLS),
        (NormName, NORMS),
        (InitName, INITS),
        (LossName, LOSSES),
        (OptimizerName, [*OPTIMIZERS, *TIMM_OPTIMIZER_NAMES]),
        (SchedulerName, SCHEDULERS),
        (FinetuneName, _FINETUNE),
        (NormalizeName, _NORMALIZE),
    ],
    ids=lambda v: getattr(v, "__name__", None) or "names",
)
def test_literal_matches_the_registry(literal, names):
    assert set(get_args(literal)) == set(names)


# The registries above are built from their Literals, so the test above holds by construction for most of them;
# what can still go wrong is a name the Literal lists but the code that builds it does not handle.
def _builds(literal) -> list:
    import torch
    from torch import nn

    from lightning_cnn.data.normalization import Normalization
    from lightning_cnn.losses import build_loss
    from lightning_cnn.nn import create_activation, create_global_pool, create_norm, create_pool, init_weights
    from lightning_cnn.optim import build_optimizer, build_scheduler

    linear = nn.Linear(4, 2)

    def scheduler(name):
        return build_scheduler(name, torch.optim.SGD(linear.parameters(), lr=0.1), max_epochs=4, steps_per_epoch=3)

    def optimizer(name):
        if name == "sparse_adam":  # refused by design, naming the replacement: a handled name all the same
            with pytest.raises(ValueError, match="use optimizer='adam'"):
                build_optimizer(name, linear)
            return name
        if name == "adahessian":  # refused too: Lightning's backward keeps no second-order graph
            with pytest.raises(ValueError, match="use optimizer='adan'"):
                build_optimizer(name, linear)
            return name
        return build_optimizer(name, linear)

    factory = {
        ActivationName: create_activation,
        PoolName: create_pool,
        GlobalPoolName: create_global_pool,
        NormName: lambda name: create_norm(name, 8),
        InitName: lambda name: init_weights(nn.Linear(4, 4), name),
        LossName: lambda name: build_loss(name, class_weights=[1.0, 2.0]) if "weighted" in name else build_loss(name),
        OptimizerName: optimizer,
        SchedulerName: scheduler,
        NormalizeName: Normalization,
    }[literal]
    return [factory(name) for name in get_args(literal)]


@pytest.mark.parametrize(
    "literal",
    [
        ActivationName,
        PoolName,
        GlobalPoolName,
        NormName,
        InitName,
        LossName,
        OptimizerName,
        SchedulerName,
        NormalizeName,
    ],
    ids=lambda v: v.__name__ if hasattr(v, "__name__") else str(v),
)
def test_every_name_of_a_literal_builds(literal):
    built = _builds(literal)
    assert len(built) == len(get_args(literal)) and all(b is not None for b in built)
