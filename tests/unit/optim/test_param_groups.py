"""Parameter groups: no weight decay on biases and normalization parameters."""

from __future__ import annotations

from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.optim import (
    build_optimizer,
    param_groups,
)


def small_cnn(**kwargs) -> nn.Module:
    return SimpleCNN(channels=(4, 8), hidden=(16, 12), **kwargs).net


def test_biases_and_norm_parameters_get_no_weight_decay_unless_asked():
    net = small_cnn()
    groups = param_groups(net, weight_decay=0.1)
    decay = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    for name, p in net.named_parameters():
        expected = 0.1 if p.ndim >= 2 else 0.0
        assert (0.1 if id(p) in decay else 0.0) == expected, name
    assert any("bias" in n for n, p in net.named_parameters() if id(p) not in decay)
    everything = param_groups(net, weight_decay=0.1, decay_all=True)
    assert len(everything) == 1 and len(everything[0]["params"]) == len(list(net.parameters()))
    opt = build_optimizer("adamw", net, weight_decay=0.1)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.1]
