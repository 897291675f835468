"""``val_fraction=0`` (and ``test_fraction=0``): every labelled image trains, and the monitors fall back to training."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, EarlyStopping, SimpleCNN, SnapshotBest
from lightning_cnn._utils.training_only import fall_back_without_validation, nothing_to_test, training_metric
from lightning_cnn.cli import CNNCli
from lightning_cnn.data import ArrayDataModule
from lightning_cnn.data.splits import stratified_split
from tests.integration.data.test_every_source_cli import _arrays, _image_folder, _torchvision

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
SMALL = ["--model.channels", "[4]", "--model.hidden", "[]", "--trainer.limit_train_batches", "3"]


def _fallback_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "instead of val/" in r.getMessage()]


def test_no_validation_and_no_test_split_leaves_every_image_to_train():
    labels = np.repeat(np.arange(4), 25)
    split = stratified_split(labels, val_fraction=0, test_fraction=0)
    assert [len(split[k]) for k in ("train", "val", "test")] == [100, 0, 0]
    np.testing.assert_array_equal(split["train"], np.arange(100))
    held = stratified_split(labels, val_fraction=0, test_fraction=0.2)
    assert [len(held[k]) for k in ("train", "val", "test")] == [80, 0, 20]
    dm = DigitsDataModule(val_fraction=0, test_fraction=0)
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.split.items()} == {"train": 1797, "val": 0, "test": 0}
    assert len(dm.train_set) == 1797 and dm.val_dataloader() == []


def test_fit_without_validation_keeps_the_best_training_epoch(tmp_path, caplog):
    """Python: SnapshotBest and EarlyStopping decide on train/loss, each saying so once."""
    caplog.set_level(logging.INFO)
    pl.seed_everything(0)
    snapshot, stop = SnapshotBest(), EarlyStopping(patience=5)
    trainer = pl.Trainer(
        max_epochs=3, limit_train_batches=4, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[snapshot, stop], accelerator="cpu",
    )  # fmt: skip
    dm = DigitsDataModule(val_fraction=0, test_fraction=0)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    assert trainer.current_epoch == 3 and sum(trainer.num_val_batches) == 0
    assert snapshot.monitor == snapshot.checkpoint.monitor == stop.monitor == "train/loss"
    assert Path(snapshot.best_model_path).is_file() and 0 <= snapshot.best_epoch <= 2
    assert float(snapshot.best_score) == pytest.approx(float(stop.best_score))
    assert stop.best_epoch == snapshot.best_epoch
    lines = _fallback_lines(caplog)
    assert lines == [
        "SnapshotBest: DigitsDataModule has no validation split (val_fraction=0), so it monitors train/loss instead"
        " of val/loss.",
        "EarlyStopping: DigitsDataModule has no validation split (val_fraction=0), so it monitors train/loss instead"
        " of val/loss.",
    ]


def test_limit_val_batches_zero_falls_back_as_well(tmp_path):
    snapshot = SnapshotBest(monitor="val/acc", mode="max")
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[snapshot], accelerator="cpu",
    )  # fmt: skip
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule())
    assert snapshot.monitor == "train/acc" and Path(snapshot.best_model_path).is_file()


def test_with_validation_nothing_changes(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    snapshot = SnapshotBest()
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[snapshot], accelerator="cpu",
    )  # fmt: skip
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule())
    assert snapshot.monitor == "val/loss" and _fallback_lines(caplog) == []


@pytest.mark.parametrize(("val_fraction", "monitor"), [(0, "train/loss"), (0.1, "val/loss")])
def test_the_plateau_scheduler_watches_the_training_loss_without_validation(tmp_path, caplog, val_fraction, monitor):
    """It stepped on val/loss alone, and a fit without validation stopped after its first epoch with a traceback."""
    caplog.set_level(logging.INFO)
    model = SimpleCNN(channels=(4,), hidden=(), scheduler="plateau", scheduler_options={"patience": 0})
    trainer = pl.Trainer(
        max_epochs=3, limit_train_batches=3, limit_val_batches=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, DigitsDataModule(val_fraction=val_fraction))
    assert trainer.current_epoch == 3
    assert [c.monitor for c in trainer.lr_scheduler_configs] == [monitor]
    said = [line for line in _fallback_lines(caplog) if line.startswith("scheduler='plateau'")]
    assert said == ([] if monitor == "val/loss" else [
        "scheduler='plateau': DigitsDataModule has no validation split (val_fraction=0), so it monitors train/loss"
        " instead of val/loss."
    ])  # fmt: skip


def test_resume_of_a_run_without_validation_restores_the_snapshot_state(tmp_path):
    """The fallback happens before the checkpoint's callback states are read: SnapshotBest's state key matches."""

    def run(epochs: int, ckpt: str | None = None) -> tuple[pl.Trainer, SnapshotBest]:
        snapshot = SnapshotBest()
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
        trainer = pl.Trainer(
            max_epochs=epochs, limit_train_batches=2, logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, callbacks=[snapshot, checkpoint],
            accelerator="cpu",
        )  # fmt: skip
        trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(val_fraction=0), ckpt_path=ckpt)
        return trainer, snapshot

    _, first = run(2)
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"]
    assert "SnapshotBest{'monitor': 'train/loss', 'mode': 'min'}" in state
    _, second = run(3, str(tmp_path / "ckpt" / "last.ckpt"))
    assert second.best_epoch >= first.best_epoch >= 0 and second.best_score <= first.best_score


def test_training_metric_and_config_fallback():
    assert training_metric("val/loss") == "train/loss" and training_metric("loss") is None
    config = {
        "data": {"init_args": {"val_fraction": 0, "num_folds": None}},
        "checkpoint": {"monitor": "val/loss"},
        "trainer": {"callbacks": [{"class_path": "lightning_cnn.EarlyStopping", "init_args": {"monitor": "val/acc"}}]},
    }
    messages = fall_back_without_validation(config)
    assert config["checkpoint"]["monitor"] == "train/loss"
    assert config["trainer"]["callbacks"][0]["init_args"]["monitor"] == "train/acc"
    assert messages == [
        "--checkpoint.monitor: --data.val_fraction 0: no validation split, so it monitors train/loss instead of"
        " val/loss.",
        "EarlyStopping: --data.val_fraction 0: no validation split, so it monitors train/acc instead of val/acc.",
    ]
    folds = {"data": {"init_args": {"val_fraction": 0, "num_folds": 3}}, "checkpoint": {"monitor": "val/loss"}}
    assert fall_back_without_validation(folds) == [] and folds["checkpoint"]["monitor"] == "val/loss"
    assert nothing_to_test(DigitsDataModule()) is None
    x, y = np.random.default_rng(0).random((20, 8, 8)), np.repeat([0, 1], 10)
    assert nothing_to_test(ArrayDataModule(x, y, val_fraction=0.2, test_fraction=0, test_x=x, test_y=y)) is None


def test_cli_fit_without_validation_or_test_split(in_tmp, caplog):
    """``lightning-cnn fit --data.val_fraction 0 --data.test_fraction 0 --test_after_fit true``: no error."""
    caplog.set_level(logging.INFO)
    cli = CNNCli(
        args=[
            "fit", "--data.val_fraction", "0", "--data.test_fraction", "0", "--test_after_fit", "true",
            "--trainer.max_epochs", "2", *SMALL, *QUIET,
        ]
    )  # fmt: skip
    assert cli.trainer.checkpoint_callback.monitor == "train/loss"
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    assert best.name == "best.ckpt" and best.is_file()
    assert cli.test_results is None  # nothing to test, and said so
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "--checkpoint.monitor: --data.val_fraction 0: no validation split, so it monitors train/loss instead of"
        " val/loss." in messages
    )
    assert (
        "Nothing to test: DigitsDataModule holds out no test images (test_fraction=0.0) and has no test set of its"
        " own. --test_after_fit skips the test." in messages
    )
    split = json.loads((Path(cli.trainer.log_dir) / "splits.json").read_text())
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (1797, 0, 0)
    saved = (Path(cli.trainer.log_dir) / "config.yaml").read_text()
    assert "monitor: train/loss" in saved


@pytest.mark.parametrize("source", [_image_folder, _arrays, _torchvision], ids=["folder", "arrays", "torchvision"])
def test_every_source_fits_without_validation(in_tmp, source):
    data = source(in_tmp / "data")
    no_test = [] if source is _torchvision else ["--data.test_fraction", "0"]  # MNIST has its own test set
    cli = CNNCli(
        args=[
            "fit", *data, "--data.val_fraction", "0", *no_test, "--test_after_fit", "true",
            "--trainer.max_epochs", "1", "--trainer.callbacks+=SnapshotBest", *SMALL, *QUIET,
        ]
    )  # fmt: skip
    dm = cli.datamodule
    assert len(dm.split["val"]) == 0 and len(dm.split["train"]) == (150 if source is _torchvision else 200)
    snapshot = next(c for c in cli.trainer.callbacks if isinstance(c, SnapshotBest))
    assert snapshot.monitor == "train/loss" and Path(snapshot.best_model_path).is_file()
    if source is _torchvision:
        assert cli.test_results is not None and "test/acc" in cli.test_results[0]
    else:
        assert cli.test_results is None
