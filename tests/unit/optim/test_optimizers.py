"""Optimizers by name: every algorithm, the refusals, their options."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.optim import (
    L2LBFGS,
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    MuonWithAdamW,
    build_optimizer,
)


def small_cnn(**kwargs) -> nn.Module:
    return SimpleCNN(channels=(4, 8), hidden=(16, 12), **kwargs).net


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if n != "sparse_adam"])
def test_every_optimizer_builds_by_name(name):
    opt = build_optimizer(name, small_cnn())
    expected = {"muon": MuonWithAdamW, "lbfgs": L2LBFGS}.get(name, OPTIMIZERS[name])
    assert type(opt) is expected and isinstance(opt, OPTIMIZERS[name] if name != "muon" else torch.optim.Optimizer)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ValueError, match=re.escape(f"Expected optimizer to be one of {OPTIMIZER_NAMES}")):
        build_optimizer("adamm", small_cnn())


def test_sparse_adam_is_refused_naming_the_replacement():
    with pytest.raises(ValueError, match="optimizer='sparse_adam' needs sparse gradients.*use optimizer='adam'"):
        build_optimizer("sparse_adam", small_cnn())


def test_weight_decay_is_refused_where_the_algorithm_has_none():
    with pytest.raises(ValueError, match="optimizer='rprop' has no weight decay"):
        build_optimizer("rprop", small_cnn(), weight_decay=0.01)


def test_sgd_takes_momentum_and_nesterov():
    opt = build_optimizer("sgd", small_cnn(), options={"momentum": 0.8, "nesterov": True})
    assert opt.defaults["momentum"] == 0.8 and opt.defaults["nesterov"] is True
