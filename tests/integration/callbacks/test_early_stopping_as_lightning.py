"""EarlyStopping in a Trainer behaves as Lightning's own, whose drop-in it is: stop epochs, reasons, resumed state."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from lightning_cnn import EarlyStopping
from tests.helpers.scripted import Scripted


class TrainScripted(Scripted):
    """Logs the scripted value at the end of each training epoch, and has no validation."""

    validation_step = None  # type: ignore[assignment]
    val_dataloader = None  # type: ignore[assignment]

    def on_validation_epoch_end(self):
        pass

    def on_train_epoch_end(self):
        self.log(self.key, self.value(self.current_epoch))


def fit(
    tmp_path: Path, model: pl.LightningModule, callbacks: list, max_epochs: int, ckpt_path: str | None = None, **kwargs
) -> pl.Trainer:
    options = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    options |= {"enable_checkpointing": False, "num_sanity_val_steps": 0, "default_root_dir": tmp_path}
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=callbacks, **(options | kwargs))
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer


# values, patience, last epoch run: the stop comes after `patience` checks without an improvement, never before
PATIENCE = [([7, 6, 6, 6, 6, 6, 6], 3, 4), ([7, 6, 5, 5, 4, 4, 4], 1, 3), ([7, 6, 7, 6, 6, 6, 6], 3, 4)]


@pytest.mark.parametrize("on_train_epoch_end", [False, True])
@pytest.mark.parametrize(("values", "patience", "last"), PATIENCE)
def test_patience(tmp_path, values, patience, last, on_train_epoch_end):
    model = TrainScripted(values, key="train/x") if on_train_epoch_end else Scripted(values, key="val/x")
    stop = EarlyStopping(monitor=model.key, patience=patience, check_on_train_epoch_end=on_train_epoch_end or None)
    trainer = fit(tmp_path, model, [stop], max_epochs=len(values) + 3)
    assert trainer.current_epoch - 1 == last == stop.stopped_epoch
    assert stop.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert "did not improve" in (stop.stopping_reason_message or "")


@pytest.mark.parametrize(
    ("options", "values", "last", "reason", "words"),
    [
        ({}, [9, 5, 3, 4, 5, 6, 9, 11], 5, EarlyStoppingReason.PATIENCE_EXHAUSTED, "did not improve"),
        (
            {"stopping_threshold": 2.5},
            [9, 8, 7, 6, 5, 6, 4, 3, 2, 1],
            8,
            EarlyStoppingReason.STOPPING_THRESHOLD,
            "Stopping threshold reached",
        ),
        (
            {"divergence_threshold": 15.5},
            [9, 4, 2, 16, 32, 64],
            3,
            EarlyStoppingReason.DIVERGENCE_THRESHOLD,
            "Divergence threshold reached",
        ),
        ({}, [5, 4, 3, math.inf, 2, 1], 3, EarlyStoppingReason.NON_FINITE_METRIC, "is not finite"),
        ({}, [5, 4, 3, math.nan, 2, 1], 3, EarlyStoppingReason.NON_FINITE_METRIC, "is not finite"),
    ],
)
def test_thresholds_and_non_finite_values_stop_with_their_reason(tmp_path, options, values, last, reason, words):
    stop = EarlyStopping(**options)
    trainer = fit(tmp_path, Scripted(values), [stop], max_epochs=len(values) + 5)
    assert trainer.current_epoch - 1 == last == stop.stopped_epoch
    assert stop.stopping_reason == reason and words in (stop.stopping_reason_message or "")


def test_check_finite_off_lets_a_nan_pass(tmp_path):
    stop = EarlyStopping(check_finite=False, patience=5)
    trainer = fit(tmp_path, Scripted([5, 4, math.nan, 3, 2]), [stop], max_epochs=5)
    assert trainer.current_epoch == 5 and stop.stopped_epoch == 0 and stop.best_epoch == 4


def test_a_run_that_improves_throughout_is_not_stopped(tmp_path):
    stop = EarlyStopping(patience=2)
    fit(tmp_path, Scripted([5, 4, 3, 2]), [stop], max_epochs=4)
    assert stop.stopped_epoch == 0 and stop.stopping_reason == EarlyStoppingReason.NOT_STOPPED
    assert stop.stopping_reason_message is None


@pytest.mark.parametrize("order", ["fast_first", "fast_last"])
def test_with_two_callbacks_the_first_to_stop_stops_the_run(tmp_path, order):
    fast, slow = EarlyStopping(monitor="val/loss", patience=1), EarlyStopping(monitor="val/other", patience=5)
    model = Scripted([5, 4, 6, 7, 8, 9, 10, 11])
    model.on_validation_epoch_end = lambda: (  # type: ignore[method-assign]
        model.log("val/loss", model.value(model.current_epoch)),
        model.log("val/other", 0.0),
    )
    trainer = fit(tmp_path, model, [fast, slow] if order == "fast_first" else [slow, fast], max_epochs=8)
    assert trainer.current_epoch - 1 == 2 == fast.stopped_epoch


class Recording(EarlyStopping):
    """Records its state at each epoch's end; on resuming, checks that the state it starts with is ``expected``."""

    def __init__(self, expected: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.expected, self.states, self.matched = expected, [], None

    def on_train_start(self, trainer, pl_module):
        if self.expected is not None:
            self.matched = self.state_dict() == self.expected

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        self.states.append(dict(self.state_dict()))


def test_the_checkpointed_state_equals_the_state_of_its_epoch_and_a_resumed_run_starts_from_it(tmp_path):
    values = [5, 4, 4.5, 3, 3.5, 3.2]
    best = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val/loss", save_top_k=1)
    first = Recording(patience=10)
    fit(tmp_path, Scripted(values), [first, best], max_epochs=5, enable_checkpointing=True)
    ckpt = torch.load(best.best_model_path, weights_only=True)
    state = ckpt["callbacks"]["Recording{'monitor': 'val/loss', 'mode': 'min'}"]
    assert ckpt["epoch"] == 3 and state == first.states[3] and state["best_epoch"] == 3
    # A new trainer with its own default ModelCheckpoint elsewhere: the state still names the file it read.
    resumed = Recording(expected=first.states[3], patience=10)
    fit(
        tmp_path / "other",
        Scripted(values),
        [resumed],
        max_epochs=6,
        enable_checkpointing=True,
        ckpt_path=best.best_model_path,
    )
    assert resumed.matched is True
    assert resumed.best_weights is not None and resumed.best_epoch == 3


def test_class_path_early_stopping_in_a_config_file_means_ours(in_tmp):
    from lightning_cnn.cli import CNNCli

    config = "trainer:\n  max_epochs: 2\n  callbacks:\n    - class_path: EarlyStopping\n      init_args:\n"
    (in_tmp / "stop.yaml").write_text(config + "        patience: 4\n")
    quick = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    cli = CNNCli(args=["fit", "-c", "stop.yaml", *quick, *quiet])
    (stop,) = [c for c in cli.trainer.callbacks if isinstance(c, pl.callbacks.EarlyStopping)]
    assert type(stop) is EarlyStopping and stop.patience == 4 and stop.best_epoch in (0, 1)
    saved = (in_tmp / "runs" / "lightning_cnn" / "version_0" / "config.yaml").read_text()
    assert "class_path: lightning_cnn.EarlyStopping" in saved  # the saved config names it in full
    # and as a YAML value on the command line
    value = '[{"class_path": "EarlyStopping", "init_args": {"patience": 2}}]'
    cli = CNNCli(args=["fit", "--trainer.callbacks", value, "--trainer.max_epochs", "1", *quick, *quiet])
    (stop,) = [c for c in cli.trainer.callbacks if isinstance(c, pl.callbacks.EarlyStopping)]
    assert type(stop) is EarlyStopping and stop.patience == 2
