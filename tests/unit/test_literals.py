"""The `Literal` types the command line checks list exactly the names the code accepts."""

from __future__ import annotations

from typing import get_args

import pytest

from lightning_cnn.data.normalization import NORMALIZE_NAMES as _NORMALIZE
from lightning_cnn.data.normalization import NormalizeName
from lightning_cnn.losses import LOSSES
from lightning_cnn.models.base import LossName, OptimizerName, SchedulerName
from lightning_cnn.models.simple_cnn import ActivationName, GlobalPoolName, InitName, NormName, PoolName
from lightning_cnn.models.transfer import _FINETUNE, FinetuneName
from lightning_cnn.nn import ACTIVATIONS, GLOBAL_POOLS, INITS, NORMS, POOLS
from lightning_cnn.optim import OPTIMIZERS, SCHEDULERS


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
