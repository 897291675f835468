"""Balanced sampling in a Trainer (two DDP ranks on the CPU, a mid-epoch resume) and fold ensembles on digits."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lightning_cnn import ArrayDataModule, DigitsDataModule, EnsembleEvaluation, SimpleCNN
from lightning_cnn.data.balanced import WeightedSeededSampler, balanced_weights
from tests.unit.data.test_balanced import imbalanced

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


class Recording(pl.LightningModule):
    """Keeps the ``(epoch, sample ids, labels)`` of every training batch; rank files under ``out`` at the end."""

    def __init__(self, out: str = "") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(16, 3)
        self.out = out
        self.seen: list[tuple[int, list[int], list[int]]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        ids = (x[:, 0, 0, 0] * 1000).round().long()  # imbalanced() writes each sample's index there
        self.seen.append((self.current_epoch, ids.tolist(), y.tolist()))
        return nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def on_train_end(self):
        if self.out:
            torch.save(self.seen, Path(self.out) / f"rank{self.global_rank}.pt")


def _balanced(**kwargs) -> ArrayDataModule:
    dm = ArrayDataModule(**imbalanced(), sampler="balanced", batch_size=25, normalize="none", **kwargs)
    dm.shuffle_seed = 11  # not the seed of whatever ran before in this process
    return dm


def _shares(labels: list[int]) -> np.ndarray:
    return np.bincount(labels, minlength=3) / len(labels)


@pytest.mark.ddp
def test_balanced_draws_under_two_ddp_ranks_are_one_global_draw_split_between_them(tmp_path):
    dm = _balanced()
    trainer = pl.Trainer(
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        limit_val_batches=0,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        **QUIET,
    )
    trainer.fit(Recording(str(tmp_path)), dm)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    train = dm.split["train"]
    pool_y = imbalanced()["y"]
    for epoch in (0, 1):
        ids = [[i for e, b, _ in ranks[r] if e == epoch for i in b] for r in (0, 1)]
        labels = [[c for e, _, b in ranks[r] if e == epoch for c in b] for r in (0, 1)]
        assert len(ids[0]) == len(ids[1]) == -(-len(train) // 2)  # half the training split each
        for r in (0, 1):
            assert np.all((_shares(labels[r]) >= 0.25) & (_shares(labels[r]) <= 0.42)), (epoch, r, _shares(labels[r]))
        assert np.all((_shares(labels[0] + labels[1]) >= 0.25) & (_shares(labels[0] + labels[1]) <= 0.42))
        # Rank r's draws are positions r, r + 2, ... of one seeded draw over the training split.
        sampler = WeightedSeededSampler(balanced_weights(pool_y[train]), seed=11, num_replicas=2)
        g = torch.Generator().manual_seed(11 + epoch)
        draw = train[torch.multinomial(sampler.weights, sampler.total_size, replacement=True, generator=g)].tolist()
        assert ids[0] == draw[0::2] and ids[1] == draw[1::2]


def test_a_balanced_run_resumed_mid_epoch_draws_the_same_remaining_batches(tmp_path):
    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}")
    full = Recording()
    pl.Trainer(max_epochs=2, limit_val_batches=0, callbacks=[every], default_root_dir=tmp_path, **QUIET).fit(
        full, _balanced()
    )
    per_epoch = -(-len(_balanced().split["train"]) // 25)
    assert len(full.seen) == 2 * per_epoch and per_epoch > 6
    resumed = Recording()
    trainer = pl.Trainer(
        max_epochs=2, limit_val_batches=0, enable_checkpointing=False, default_root_dir=tmp_path, **QUIET
    )
    trainer.fit(resumed, _balanced(), ckpt_path=tmp_path / "ckpt" / "step=6.ckpt")  # batch 6 of epoch 0
    assert resumed.seen == full.seen[6:]


def _fit_fold(path: Path, dm: DigitsDataModule) -> None:
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=3, limit_val_batches=0, default_root_dir=path.with_suffix(""), **QUIET
    )
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    trainer.save_checkpoint(path)


def test_members_of_other_folds_score_the_test_split_but_not_this_folds_validation(tmp_path):
    for k in range(3):
        _fit_fold(tmp_path / f"fold{k}.ckpt", DigitsDataModule(num_folds=3, fold=k))
    _fit_fold(tmp_path / "single.ckpt", DigitsDataModule())
    others = [str(tmp_path / f"fold{k}.ckpt") for k in (1, 2)] + [str(tmp_path / "single.ckpt")]
    ensemble = EnsembleEvaluation(checkpoints=others, stages=("val", "test"))
    trainer = pl.Trainer(
        callbacks=[ensemble], limit_test_batches=2, limit_val_batches=2, default_root_dir=tmp_path, **QUIET
    )
    module = SimpleCNN.load_from_checkpoint(tmp_path / "fold0.ckpt")
    result = trainer.test(
        module, DigitsDataModule(num_folds=3, fold=0), ckpt_path=tmp_path / "fold0.ckpt", verbose=False
    )
    assert "test/member3_acc" in result[0]  # the fold-0 module and three members: the test split is theirs too
    message = r"fold1.ckpt was trained on fold 1 of 3, but this DigitsDataModule validates on fold 0 of 3"
    with pytest.raises(ValueError, match=message):
        trainer.validate(module, DigitsDataModule(num_folds=3, fold=0), verbose=False)
