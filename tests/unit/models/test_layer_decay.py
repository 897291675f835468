"""TransferClassifier(layer_decay=...): each stage's rate, with weight decay, backbone_lr_scale and schedulers."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn import TransferClassifier
from lightning_cnn.optim import build_scheduler


def factors(model: TransferClassifier, optimizer: torch.optim.Optimizer) -> list[tuple[int, float, float]]:
    """(stage, lr / head's lr, weight decay) of every group; the head is stage len(stages)."""
    stage_of = {id(p): i for i, stage in enumerate(model._stages) for p in stage}
    head = max(g["lr"] for g in optimizer.param_groups)
    out = []
    for g in optimizer.param_groups:
        stages = {stage_of.get(id(p), len(model._stages)) for p in g["params"]}
        assert len(stages) == 1, "a group mixes stages"
        out.append((stages.pop(), g["lr"] / head, g["weight_decay"]))
    return out


def expected(n: int, decay: float, scale: float, stage: int) -> float:
    return 1.0 if stage == n else scale * decay ** (n - stage)


@pytest.mark.parametrize(("decay", "scale"), [(0.5, 1.0), (0.75, 0.1)])
def test_each_stage_runs_at_its_decayed_rate_through_warmup_and_cosine(decay, scale):
    model = TransferClassifier(
        num_classes=3,
        backbone="test_resnet",
        finetune="full",
        lr=1e-2,
        weight_decay=0.05,
        layer_decay=decay,
        backbone_lr_scale=scale,
    )
    n = len(model._stages)
    opt = model.create_optimizer()
    sched = build_scheduler("cosine", opt, max_epochs=10, steps_per_epoch=1, warmup_epochs=2)["scheduler"]
    seen = set()
    for epoch in range(9):
        if epoch in (0, 2, 6):  # warm-up, just after it, mid-cosine
            for stage, ratio, _ in factors(model, opt):
                assert ratio == pytest.approx(expected(n, decay, scale, stage), rel=1e-9), (epoch, stage)
                seen.add(stage)
        opt.step()
        sched.step()
    assert seen == set(range(n + 1))  # every stage and the head have groups
    for g in opt.param_groups:  # no decay on norms and biases, decay on weights, in every stage
        assert all(p.ndim >= 2 for p in g["params"]) if g["weight_decay"] else all(p.ndim < 2 for p in g["params"])


def test_partial_finetuning_has_groups_only_for_the_trained_stages():
    model = TransferClassifier(
        num_classes=3,
        backbone="test_resnet",
        finetune="partial",
        trainable_stages=2,
        lr=1e-2,
        layer_decay=0.5,
        backbone_lr_scale=1.0,
    )
    n = len(model._stages)
    got = {(stage, round(ratio, 12)) for stage, ratio, _ in factors(model, model.create_optimizer())}
    assert got == {(n, 1.0), (n - 1, 0.5), (n - 2, 0.25)}


def test_without_layer_decay_every_stage_keeps_backbone_lr_scale():
    model = TransferClassifier(num_classes=3, backbone="test_resnet", finetune="full", lr=1e-2)
    opt = model.create_optimizer()
    head = {id(p) for p in model.head.parameters()}
    ratios = {(id(p) in head, round(g["lr"] / 1e-2, 9)) for g in opt.param_groups for p in g["params"]}
    assert ratios == {(True, 1.0), (False, 0.1)}


@pytest.mark.parametrize("optimizer", ["lion", "timm:adamw"])
def test_layer_decay_works_with_timm_optimizers(optimizer):
    model = TransferClassifier(
        num_classes=3,
        backbone="test_resnet",
        finetune="full",
        optimizer=optimizer,
        layer_decay=0.5,
        backbone_lr_scale=1.0,
    )
    n = len(model._stages)
    for stage, ratio, _ in factors(model, model.create_optimizer()):
        assert ratio == pytest.approx(expected(n, 0.5, 1.0, stage))


def test_layer_decay_with_muon_is_refused_naming_both():
    model = TransferClassifier(
        num_classes=3, backbone="test_resnet", finetune="full", optimizer="muon", layer_decay=0.5
    )
    with pytest.raises(ValueError, match=r"layer_decay=0.5 need parameter groups, which optimizer='muon'"):
        model.create_optimizer()
