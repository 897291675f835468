"""Initialization schemes and the variance they keep through deep stacks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.nn import (
    gain_nonlinearity,
    init_weights,
)


def _stack_variance(init: str, activation: str, depth: int = 20, width: int = 256) -> list[float]:
    torch.manual_seed(0)
    layers = [nn.Linear(width, width) for _ in range(depth)]
    nonlinearity = "tanh" if activation == "tanh" else "linear"
    for layer in layers:
        init_weights(layer, init, nonlinearity=nonlinearity)
    act = torch.tanh if activation == "tanh" else (lambda t: t)
    h = act(torch.randn(1024, width))  # the stack starts after an activation, like any hidden layer
    variances = []
    with torch.no_grad():
        for layer in layers:
            z = layer(h)
            variances.append(z.var().item())  # pre-activation variance of each layer
            h = act(z)
    return variances


@pytest.mark.parametrize("activation", ["tanh", "identity"])
@pytest.mark.parametrize("init", ["xavier_uniform", "xavier_normal"])
def test_xavier_keeps_the_variance_while_unit_normal_explodes(init, activation):
    # the data have variance 1 (tanh'ed first for the tanh stack); the pre-activations of every layer of a
    # 20-deep, 256-wide stack stay within a factor 2 of that (Xavier scaled by the gain, 5/3 for tanh)
    good = _stack_variance(init, activation)
    assert all(0.5 < v < 2.0 for v in good), good
    bad = _stack_variance("normal", activation)  # N(0, 1): variance x256 per linear layer
    assert bad[0] > 100 and (bad[-1] > 100 or not math.isfinite(bad[-1]))


@pytest.mark.parametrize("init", ["kaiming_normal", "xavier_normal", "orthogonal"])
@pytest.mark.parametrize("by", ["gain_nonlinearity", "init_weights"])
def test_selu_stack_keeps_unit_variance_through_20_layers(init, by):
    torch.manual_seed(0)
    layers = [nn.Linear(256, 256) for _ in range(20)]
    nonlinearity = gain_nonlinearity("selu") if by == "gain_nonlinearity" else "selu"
    for layer in layers:
        init_weights(layer, init, nonlinearity=nonlinearity)
    h = torch.randn(2048, 256)  # SELU's fixed point: mean 0, variance 1
    variances = []
    with torch.no_grad():
        for layer in layers:
            h = torch.selu(layer(h))
            variances.append(h.var().item())
    assert all(0.7 < v < 1.3 for v in variances), variances  # the gain of 3/4 would give about 1e-5 at layer 20


def test_simple_cnn_with_selu_initializes_for_self_normalization():
    torch.manual_seed(0)
    model = SimpleCNN(channels=(4,), hidden=(256, 256), activation="selu", init="kaiming_normal")
    hidden = model.net.head[4]
    assert isinstance(hidden, nn.Linear) and hidden.weight.shape == (256, 256)
    assert hidden.weight.std().item() == pytest.approx(1 / 16, rel=0.05)  # variance 1 / fan_in (gain 1)
