"""DropConnect and stochastic depth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.nn import (
    DropConnectLinear,
    StochasticDepth,
)


def test_drop_connect_at_eval_equals_linear_with_the_expected_weights():
    torch.manual_seed(0)
    layer = DropConnectLinear(6, 4, p=0.5)
    plain = nn.Linear(6, 4)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(5, 6)
    layer.eval()
    assert torch.equal(layer(x), plain(x)) and torch.equal(layer(x), layer(x))


def test_drop_connect_in_training_drops_weights_not_units():
    torch.manual_seed(0)
    layer = DropConnectLinear(3, 200, p=0.5, bias=False)
    e0 = torch.tensor([[1.0, 0.0, 0.0]])  # the output is the first weight column, masked and rescaled
    w = layer.weight[:, 0].detach()
    outs = torch.cat([layer(e0) for _ in range(400)]).detach()
    kept = outs != 0
    torch.testing.assert_close(outs[kept], (2 * w).expand_as(outs)[kept])  # kept weights scaled by 1/(1-p)
    assert 0.4 < kept.float().mean() < 0.6  # about half of the weights dropped
    assert 0.0 < kept.float().mean(0).min() and kept.float().mean(0).max() < 1.0  # not whole units
    torch.testing.assert_close(outs.mean(0), w, atol=0.3 * w.abs().max().item(), rtol=0)  # expectation


def test_stochastic_depth_drops_whole_samples_in_training_and_is_identity_in_eval():
    torch.manual_seed(0)
    sd = StochasticDepth(0.25)
    x = torch.ones(400, 2, 3, 3)
    y = sd(x)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()  # all or nothing per sample
    dropped = (per_sample == 0).all(1).float().mean().item()
    assert 0.15 < dropped < 0.35
    assert torch.equal(sd.eval()(x), x)


def test_simple_cnn_stochastic_depth_rises_linearly_with_depth_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    model = SimpleCNN(channels=(4, 8, 8, 8), hidden=(), residual=True, stochastic_depth=0.4, pool="none")
    rates = [block.drop_path.p for block in model.net.features[:4]]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4])
    x = torch.randn(16, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    for m in model.modules():  # freeze batch statistics' effect: compare only the random drops
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    assert not torch.equal(model(x), model(x))
