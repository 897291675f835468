"""Schedulers by name: lengths, warm-up, refusals, state round trips."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_cnn.optim import (
    SCHEDULERS,
    WarmupReduceLROnPlateau,
    build_scheduler,
)


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
