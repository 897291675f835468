"""EarlyStopping and SnapshotBest under DDP on the CPU: every rank decides alike and ends with the same weights."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lightning_cnn import EarlyStopping, SnapshotBest
from tests.helpers.scripted import Scripted

# Each rank logs its own, unsynced value: rank 0's best is epoch 2 and it stops at epoch 5;
# rank 1's alone would be best at epoch 4 and never stop. Both follow rank 0.
VALUES = {0: [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.0], 1: [5.0, 4.0, 3.0, 3.5, 1.0, 0.9, 0.8]}


class RankScripted(Scripted):
    """Each rank logs its own, unsynced values, and saves what it decided at teardown."""

    def __init__(self, out: str) -> None:
        super().__init__(batch_size=4)
        self.out = out

    def value(self, epoch: int) -> float:
        return VALUES[self.global_rank][epoch]

    def teardown(self, stage):  # runs after the callbacks' teardown, where they restore
        if stage == "fit":
            stop, snap = self.trainer.callbacks[0], self.trainer.callbacks[1]
            torch.save(
                {
                    "final": self.state_dict(),
                    "val_weights": self.val_weights,
                    "decisions": (stop.stopped_epoch, stop.best_epoch, snap.best_epoch),
                },
                Path(self.out) / f"rank{self.global_rank}.pt",
            )


@pytest.mark.ddp
def test_ranks_agree_and_restore_identical_weights(tmp_path):
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=len(VALUES[0]),
        callbacks=[EarlyStopping(patience=3), SnapshotBest(dirpath=str(tmp_path / "snap"))],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(RankScripted(str(tmp_path)))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["decisions"] == ranks[1]["decisions"] == (5, 2, 2)
    for r in ranks:
        assert max(r["val_weights"]) == 5
        assert all(torch.equal(r["final"][k], ranks[0]["final"][k]) for k in r["final"])
        assert all(torch.equal(r["final"][k], r["val_weights"][2][k]) for k in r["final"])
    best = torch.load(tmp_path / "snap" / "best.ckpt", weights_only=True)
    assert best["epoch"] == 2
    assert all(torch.equal(best["state_dict"][k], ranks[0]["final"][k]) for k in best["state_dict"])
