"""Muon with AdamW: the split of parameters, state round trips, schedules."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.optim import (
    MuonWithAdamW,
    build_optimizer,
)


def small_cnn(**kwargs) -> nn.Module:
    return SimpleCNN(channels=(4, 8), hidden=(16, 12), **kwargs).net


def _steps(net: nn.Module, opt: torch.optim.Optimizer, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 1, 8, 8, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


def test_muon_gets_the_hidden_2d_weights_and_adamw_the_rest():
    net = small_cnn()
    opt = build_optimizer("muon", net, lr=0.01, weight_decay=0.05)
    assert isinstance(opt, MuonWithAdamW) and opt.muon is not None and opt.adamw is not None
    muon_ids = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    head = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert muon_ids == {id(head[0].weight), id(head[1].weight)}  # hidden layers, not the output layer
    adamw_ids = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    assert adamw_ids.isdisjoint(muon_ids) and len(adamw_ids | muon_ids) == len(list(net.parameters()))
    assert id(head[-1].weight) in adamw_ids
    assert all(p.ndim != 2 or id(p) == id(head[-1].weight) for g in opt.adamw.param_groups for p in g["params"])
    assert opt.param_groups[0]["weight_decay"] == 0.05  # Muon's group decays
    assert all(g["lr"] == 0.01 for g in opt.param_groups)


def test_muon_with_adamw_state_survives_a_weights_only_round_trip_and_continues_identically():
    torch.manual_seed(0)
    net = small_cnn()
    opt = build_optimizer("muon", net, lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _steps(net, opt, 3, seed=1)
    sched.step()
    buf = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert any("momentum_buffer" in s for s in saved["opt"]["state"].values())  # Muon's state
    assert any("exp_avg" in s for s in saved["opt"]["state"].values())  # AdamW's state

    clone = small_cnn()
    clone.load_state_dict(saved["net"])
    opt2 = build_optimizer("muon", clone, lr=0.01)
    opt2.load_state_dict(saved["opt"])
    assert [g["lr"] for g in opt2.param_groups] == [0.005] * len(opt2.param_groups)  # the scheduler's LR
    _steps(net, opt, 2, seed=2)
    _steps(clone, opt2, 2, seed=2)
    for a, b in zip(net.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_muon_with_adamw_follows_a_scheduler_in_both_parts():
    net = small_cnn()
    opt = build_optimizer("muon", net, lr=0.1)
    assert isinstance(opt, MuonWithAdamW) and opt.muon is not None and opt.adamw is not None
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    _steps(net, opt, 1, seed=0)
    sched.step()
    assert opt.muon.param_groups[0]["lr"] == pytest.approx(0.05)
    assert opt.adamw.param_groups[0]["lr"] == pytest.approx(0.05)


def test_muon_rejects_non_matrix_parameters():
    with pytest.raises(ValueError, match=r"Muon takes only 2-D parameters, but got shapes \[\(3,\)\]"):
        MuonWithAdamW([{"params": [nn.Parameter(torch.zeros(3))]}], [])
