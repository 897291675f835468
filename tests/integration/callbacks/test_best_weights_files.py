"""Where the best weights live: EarlyStopping writes them once beside the checkpoints; SnapshotBest's file core."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import EarlyStopping, SnapshotBest
from tests.helpers.scripted import Scripted


def fit(tmp_path, values, callbacks, max_epochs=None, ckpt_path=None) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs or len(values),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=callbacks,
    )
    trainer.fit(Scripted(values), ckpt_path=ckpt_path)
    return trainer


def test_checkpoints_hold_the_path_of_the_best_weights_not_a_second_copy(tmp_path):
    values = [5, 4, 4.5, 3, 3.5]
    stop, last = EarlyStopping(patience=5), ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    fit(tmp_path, values, [stop, last])
    ckpt = torch.load(tmp_path / "ck" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("EarlyStopping")]
    assert not [k for k, v in state.items() if isinstance(v, dict)]  # no state_dict in the callback's state
    assert state["best_epoch"] == 3 and state["best_weights_path"] == str(
        (tmp_path / "ck").resolve() / "early_stopping_best-val_loss-min.pt"
    )
    saved = torch.load(state["best_weights_path"], weights_only=True)
    assert (saved["epoch"], saved["step"]) == (3, state["best_step"])
    assert all(torch.equal(saved["state_dict"][k], stop.best_weights[k]) for k in saved["state_dict"])


def test_a_resumed_run_reads_the_best_weights_back_and_warns_when_they_are_gone(tmp_path):
    values = [5, 1, 3, 4, 4.5]
    last = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    part = EarlyStopping(patience=5)
    fit(tmp_path, values, [part, last], max_epochs=3)
    resumed = EarlyStopping(patience=5)
    fit(tmp_path, values, [resumed], ckpt_path=tmp_path / "ck" / "last.ckpt")
    assert resumed.best_epoch == 1 and resumed.best_weights is not None
    assert all(torch.equal(resumed.best_weights[k], part.best_weights[k]) for k in part.best_weights)

    (tmp_path / "ck" / "early_stopping_best-val_loss-min.pt").unlink()
    again = EarlyStopping(patience=5)
    with pytest.warns(UserWarning, match=r"EarlyStopping: the best weights of the resumed run \(epoch 1, .*is missing"):
        fit(tmp_path, values, [again], ckpt_path=tmp_path / "ck" / "last.ckpt")
    assert again.best_epoch == 1 and again.best_weights is None


def test_snapshot_best_keeps_its_file_through_a_model_checkpoint_core(tmp_path):
    snap = SnapshotBest(dirpath=str(tmp_path / "snap"))
    assert isinstance(snap.checkpoint, ModelCheckpoint) and snap.checkpoint.save_top_k == 1
    trainer = fit(tmp_path, [5, 2, 3], [snap])
    assert trainer.checkpoint_callback is not snap.checkpoint  # the trainer's own ModelCheckpoint keeps its place
    assert snap.checkpoint.best_model_path == snap.best_model_path == str(tmp_path / "snap" / "best.ckpt")
    assert snap.checkpoint.best_model_score == snap.best_score == 2
