"""Layer-wise learning-rate decay through a Trainer: warm-up, cosine and gradual unfreezing keep each stage's ratio."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_cnn import TransferClassifier


class StageLRs(pl.Callback):
    """At every optimizer step: each stage's lr / the head's lr, and the head's lr."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, dict[int, float]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        n = len(pl_module._stages)
        stage_of = {id(p): i for i, stage in enumerate(pl_module._stages) for p in stage}
        head = {id(p) for p in pl_module.head.parameters()}
        head_lr = {g["lr"] for g in optimizer.param_groups if all(id(p) in head for p in g["params"])}
        assert len(head_lr) == 1
        (lr,) = head_lr
        ratios = {stage_of.get(id(p), n): g["lr"] / lr for g in optimizer.param_groups for p in g["params"]}
        self.steps.append((lr, ratios))


def test_gradual_unfreezing_with_layer_decay_keeps_each_stage_at_its_rate_under_warmup_and_cosine(tmp_path):
    pl.seed_everything(0)
    model = TransferClassifier(
        num_classes=4,
        backbone="test_resnet",
        finetune="gradual",
        unfreeze_epochs=[2, 3],
        lr=1e-2,
        weight_decay=0.01,
        layer_decay=0.5,
        backbone_lr_scale=0.5,
        scheduler="cosine",
        warmup_epochs=1,
    )
    n = len(model._stages)
    before = [[p.detach().clone() for p in stage] for stage in model._stages]
    moved_by_epoch: list[set[int]] = []

    class Moved(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            moved_by_epoch.append(
                {
                    i
                    for i, stage in enumerate(pl_module._stages)
                    for b, p in zip(before[i], stage, strict=True)
                    if not torch.equal(b, p)
                }
            )

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 16, 16, generator=g), torch.arange(16) % 4
    lrs = StageLRs()
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        callbacks=[lrs, Moved()],
    )
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=4))
    assert len(lrs.steps) == 16
    for step, (_, ratios) in enumerate(lrs.steps):  # every step: warm-up (epoch 0), cosine, after each unfreeze
        for stage, ratio in ratios.items():
            want = 1.0 if stage == n else 0.5 * 0.5 ** (n - stage)
            assert ratio == pytest.approx(want, rel=1e-9), (step, stage)
    head_lrs = [lr for lr, _ in lrs.steps]
    assert head_lrs[0] < head_lrs[4] and head_lrs[4] > head_lrs[-1]  # warm-up rose, cosine fell
    # nothing below the head moves before epoch 2; the last stage moves from epoch 2, the one before from epoch 3
    assert moved_by_epoch[0] == moved_by_epoch[1] == set()
    assert moved_by_epoch[2] == {n - 1}
    assert moved_by_epoch[3] == {n - 2, n - 1}
