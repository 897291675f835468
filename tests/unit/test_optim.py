"""Optimizers and schedulers by name: parameter groups, Muon's split, refusals, state round trips."""

from __future__ import annotations

import io
import re

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.optim import (
    L2LBFGS,
    OPTIMIZERS,
    SCHEDULERS,
    MuonWithAdamW,
    WarmupReduceLROnPlateau,
    build_optimizer,
    build_scheduler,
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


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if n != "sparse_adam"])
def test_every_optimizer_builds_by_name(name):
    opt = build_optimizer(name, small_cnn())
    expected = {"muon": MuonWithAdamW, "lbfgs": L2LBFGS}.get(name, OPTIMIZERS[name])
    assert type(opt) is expected and isinstance(opt, OPTIMIZERS[name] if name != "muon" else torch.optim.Optimizer)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ValueError, match=re.escape(f"Expected optimizer to be one of {tuple(OPTIMIZERS)}")):
        build_optimizer("adamm", small_cnn())


def test_sparse_adam_is_refused_naming_the_replacement():
    with pytest.raises(ValueError, match="optimizer='sparse_adam' needs sparse gradients.*use optimizer='adam'"):
        build_optimizer("sparse_adam", small_cnn())


def test_weight_decay_is_refused_where_the_algorithm_has_none():
    with pytest.raises(ValueError, match="optimizer='rprop' has no weight decay"):
        build_optimizer("rprop", small_cnn(), weight_decay=0.01)


def test_lbfgs_weight_decay_is_an_l2_term_on_weights_only():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = build_optimizer("lbfgs", model, lr=1.0, weight_decay=0.5)
    assert opt.l2 == 0.5 and [p is model.weight for p in opt._l2_params] == [True]
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(20):
        opt.step(closure)
    # At the optimum of CE + 0.25 ||W||^2 the gradient of the objective vanishes: dCE/dW = -0.5 W.
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(model.weight.grad, -0.5 * model.weight.detach(), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.bias.grad, torch.zeros(3), atol=1e-4, rtol=0)  # the bias is not penalized


def test_sgd_takes_momentum_and_nesterov():
    opt = build_optimizer("sgd", small_cnn(), options={"momentum": 0.8, "nesterov": True})
    assert opt.defaults["momentum"] == 0.8 and opt.defaults["nesterov"] is True


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


def _steps(net: nn.Module, opt: torch.optim.Optimizer, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 1, 8, 8, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


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


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_builds_by_name(name):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    cfg = build_scheduler(name, opt, max_epochs=8, steps_per_epoch=4)
    assert cfg["interval"] == ("step" if name == "one_cycle" else "epoch")
    assert ("monitor" in cfg) == (name == "plateau")


def test_one_cycle_takes_the_total_steps_of_a_training_that_stops_within_an_epoch():
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = build_scheduler("one_cycle", opt, max_epochs=2, steps_per_epoch=4, total_steps=7)["scheduler"]
    assert sched.total_steps == 7
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) > 0.09 and lrs[-1] < 1e-5  # the whole cycle (up to max_lr 0.1 and down), in the 7 steps
    with pytest.raises(ValueError, match="Tried to step 8 times"):
        sched.step()
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    assert build_scheduler("one_cycle", opt, max_epochs=2, steps_per_epoch=4)["scheduler"].total_steps == 8


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda o: build_scheduler("cosin", o, 5, 2), re.escape(f"Expected scheduler to be one of {SCHEDULERS}")),
        (lambda o: WarmupReduceLROnPlateau(o, warmup_epochs=0), "Expected warmup_epochs to be > 0, but got 0."),
        (lambda o: WarmupReduceLROnPlateau(o, 2, start_factor=0.0), r"Expected start_factor to be in \(0, 1\]"),
        (lambda o: build_scheduler("one_cycle", o, 5, 2, warmup_epochs=1), "has its own warm-up"),
    ],
)
def test_bad_scheduler_arguments(call, message):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=message):
        call(opt)


def test_plateau_after_warm_up_resumes_from_its_state_dict():
    def make():
        opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        return opt, build_scheduler("plateau", opt, 8, 4, warmup_epochs=3, options={"patience": 0})["scheduler"]

    opt, sched = make()
    assert isinstance(sched, WarmupReduceLROnPlateau) and isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    losses = [1.0, 0.9, 0.8, 0.7, 0.7, 0.7, 0.6]
    for loss in losses[:2]:
        sched.step(loss)
    state, opt_state = sched.state_dict(), opt.state_dict()
    for loss in losses[2:]:
        sched.step(loss)
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == pytest.approx([0.025])  # warm-up ends at 0.1; two epochs without improvement halve it twice

    opt2, sched2 = make()  # a resumed run: a new scheduler, then the saved state
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    for loss in losses[2:]:
        sched2.step(loss)
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx(lrs)
