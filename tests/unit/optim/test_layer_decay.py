"""Layer-wise learning-rate decay: the factors and the regrouping of an optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_cnn.optim import layer_decay_scales, scale_param_groups


@pytest.mark.parametrize(("n", "decay", "expected"), [(1, 0.5, [0.5]), (3, 0.5, [0.125, 0.25, 0.5]), (2, 1.0, [1, 1])])
def test_each_earlier_stage_runs_at_decay_times_the_next(n, decay, expected):
    assert layer_decay_scales(n, decay) == pytest.approx(expected)


def test_regrouping_keeps_every_setting_and_every_parameter_once():
    a, b, c, d = (nn.Parameter(torch.zeros(2, 2)) for _ in range(4))
    opt = torch.optim.AdamW(
        [{"params": [a, b], "weight_decay": 0.1}, {"params": [c, d], "weight_decay": 0.0}], lr=0.2, betas=(0.8, 0.9)
    )
    scale_param_groups(opt, {id(b): 0.5, id(c): 0.5, id(d): 0.25})
    got = [([id(p) for p in g["params"]], g["lr"], g["weight_decay"], g["betas"]) for g in opt.param_groups]
    assert got == [
        ([id(a)], 0.2, 0.1, (0.8, 0.9)),
        ([id(b)], 0.1, 0.1, (0.8, 0.9)),
        ([id(c)], 0.1, 0.0, (0.8, 0.9)),
        ([id(d)], 0.05, 0.0, (0.8, 0.9)),
    ]
