"""The augmentation policies in training: exact on resume, and each learns the digits above its bar."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, SimpleCNN

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


@pytest.mark.slow
def test_a_run_resumed_mid_epoch_draws_the_same_policy_operations(tmp_path: Path):
    """The batched policies draw from the global random stream, whose state the DataModule checkpoints:
    a run resumed from a step in the middle of an epoch ends with the weights of the uninterrupted run.
    (The three policies draw their parameters the same way; RandAugment stands for them.)"""
    policy = "randaugment"

    def run(ckpt_path: Path | None = None, callbacks: tuple = ()) -> dict[str, torch.Tensor]:
        pl.seed_everything(0, verbose=False)
        model = SimpleCNN(channels=(4,), hidden=(8,))
        dm = DigitsDataModule(batch_size=128, image_size=12, augment=policy, augment_on="device")
        trainer = pl.Trainer(
            max_epochs=2,
            limit_val_batches=1,
            deterministic=True,
            default_root_dir=tmp_path,
            callbacks=list(callbacks),
            enable_checkpointing=bool(callbacks),
            **QUIET,
        )
        trainer.fit(model, dm, ckpt_path=ckpt_path)
        return model.state_dict()

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=15, save_top_k=-1, filename="{step}")
    full = run(callbacks=(every,))
    resumed = run(tmp_path / "ckpt" / "step=15.ckpt")  # 10 batches an epoch: the middle of epoch 1
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0, msg=key)
    pl.seed_everything(0, verbose=False)
    other = SimpleCNN(channels=(4,), hidden=(8,))
    pl.Trainer(max_epochs=2, limit_val_batches=1, enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(
        other, DigitsDataModule(batch_size=128, image_size=12, augment=None)
    )
    assert any(not torch.equal(other.state_dict()[k], v) for k, v in full.items())  # the policy did change training
