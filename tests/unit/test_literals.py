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
from lightning_cnn.optim import OPTIMIZERS, SCHEDULERS, OptimizerName, SchedulerName


@pytest.mark.parametrize(
    ("literal", "names"),
    [
        (ActivationName, ACTIVATIONS),
        (PoolName, POOLS),
        (GlobalPoolName, GLOBAL_POOLS),
        (NormName, NORMS),
        (InitName, INITS),
        (LossName, LOSSES),
        (OptimizerName, OPTIMIZERS),
        (SchedulerName, SCHEDULERS),
        (FinetuneName, _FINETUNE),
        (NormalizeName, _NORMALIZE),
    ],
    ids=lambda v: getattr(v, "__name__", None) or "names",
)
def test_literal_matches_the_registry(literal, names):
    assert set(get_args(literal)) == set(names)
