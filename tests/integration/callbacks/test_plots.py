"""Plots and the run summary: produced by a real run, opened and checked."""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import DigitsDataModule, RunSummary, SimpleCNN, TrainingPlots
from tests.helpers.images import assert_real_png


def test_training_plots_and_summary(fast_trainer, tmp_path, capsys):
    pl.seed_everything(0)
    plots, summary = TrainingPlots(dirpath=str(tmp_path / "plots")), RunSummary()
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [plots, summary]}, max_epochs=3)
    model, dm = SimpleCNN(channels=(8, 16), dropout=0.1), DigitsDataModule()
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)

    assert len(plots.history["train/loss"]) == len(plots.history["val/acc"]) == 3
    assert plots.history["train/loss"][-1] < plots.history["train/loss"][0]
    names = sorted(p.name for p in plots.written)
    assert names == ["confusion_matrix.png", "curves.png", "reliability.png"]
    for path in plots.written:
        assert_real_png(path)

    rows = dict(summary.rows)
    assert rows["input"] == "[B, 1, 8, 8] float images"
    assert rows["train / val / test"] == "1259 / 269 / 269"
    assert rows["optimizer"].startswith("AdamW (lr 0.001)")
    assert rows["dropout"] == "dropout 0.1" and rows["normalization"] == "dataset"
    assert "Run summary" in capsys.readouterr().out


def test_cli_run_writes_plots_into_the_run_folder(in_tmp):
    from lightning_cnn.cli import CNNCli

    quick = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "4"]
    quick += ["--trainer.enable_progress_bar", "false"]
    cli = CNNCli(args=["fit", "--test_after_fit", "true", *quick])
    run = Path(cli.trainer.log_dir)
    for name in ("curves.png", "confusion_matrix.png", "reliability.png"):
        assert_real_png(run / name)


@pytest.mark.parametrize("kind", ["curves", "confusion", "reliability"])
def test_plot_functions_write_what_they_are_given(tmp_path, kind):
    import torch

    from lightning_cnn.callbacks.plots import plot_confusion_matrix, plot_curves, plot_reliability

    path = tmp_path / f"{kind}.png"
    if kind == "curves":
        plot_curves({"train/loss": [2.0, 1.0, 0.5], "val/loss": [2.1, 1.2, 0.9]}, path)
    elif kind == "confusion":
        plot_confusion_matrix(np.array([[5, 1], [2, 7]]), ["cat", "dog"], path)
    else:
        probs = torch.softmax(torch.randn(200, 4, generator=torch.Generator().manual_seed(0)) * 3, -1)
        plot_reliability({"plain": (probs, torch.randint(0, 4, (200,)))}, path)
    assert_real_png(path)


def test_reliability_diagram_adds_tta_and_ensemble_lines(fast_trainer, tmp_path):
    from lightning_cnn import EnsembleEvaluation, TestTimeAugmentation

    pl.seed_everything(0)
    dm = DigitsDataModule()
    members = []
    for seed in (0, 1):
        pl.seed_everything(seed)
        model = SimpleCNN(channels=(4, 8), hidden=())
        pl.Trainer(**fast_trainer, max_epochs=1).fit(model, dm)
        members.append(model)
    plots = TrainingPlots(dirpath=str(tmp_path / "plots"))
    tta = TestTimeAugmentation(views=("identity", "shifts"))
    ensemble = EnsembleEvaluation(members=members[1:])
    pl.Trainer(**{**fast_trainer, "callbacks": [plots, tta, ensemble]}).test(members[0], dm, verbose=False)
    n = len(dm.split["test"])
    assert tta.test_probabilities["tta"].shape == ensemble.test_probabilities["ensemble"].shape == (n, 10)
    torch.testing.assert_close(tta.test_probabilities["tta"].sum(-1), torch.ones(n))
    assert set(plots.reliability_curves) == {"plain", "tta", "ensemble"}
    assert_real_png(tmp_path / "plots" / "reliability.png")


def _tensorboard_images(folder: Path) -> dict[str, bytes]:
    """The image summaries in the TensorBoard event files under ``folder`` (TFRecord framing, Event protos)."""
    import struct

    from tensorboardX.proto import event_pb2

    images = {}
    for path in folder.rglob("events.out.tfevents.*"):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("image"):
                    images[value.tag] = value.image.encoded_image_string
    return images


def test_plots_go_to_tensorboard_when_that_logger_is_used(fast_trainer, tmp_path):
    import io

    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_cnn.callbacks import AugmentationPreview

    pl.seed_everything(0)
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    callbacks = [TrainingPlots(), AugmentationPreview()]
    trainer = pl.Trainer(**{**fast_trainer, "logger": logger, "callbacks": callbacks}, max_epochs=2)
    model, dm = SimpleCNN(channels=(4,)), DigitsDataModule(augment="light")
    trainer.fit(model, dm)
    # tensorboardX names an event file by the second it opens ("events.out.tfevents.<seconds>.<host>") and opens it
    # with "wb": a writer that test() reopens within the second fit's writer opened in truncates fit's file (and its
    # figures; 3 of 4 runs of this test without the wait). A real run is longer; this one waits for the next second.
    time.sleep(1.01 - time.time() % 1)
    trainer.test(model, dm, verbose=False)
    logger.experiment.flush()

    images = _tensorboard_images(tmp_path / "tb")
    assert set(images) == {"plots/curves", "plots/confusion_matrix", "plots/reliability", "augment/preview"}
    for tag, encoded in images.items():
        image = Image.open(io.BytesIO(encoded))
        assert np.asarray(image.convert("L"), dtype=np.float32).std() > 10, f"{tag} looks blank"
        if tag.startswith("plots/"):  # the PNGs of the run folder
            path = Path(trainer.log_dir) / f"{tag.split('/')[1]}.png"
            assert_real_png(path)
            assert image.size == Image.open(path).size
    assert callbacks[1].path is not None and callbacks[1].path.is_file()


class _LogsInItsOwnHooks(pl.LightningModule):
    """Not one of ours: logs its epoch values in its own epoch-end hooks, which run after the callbacks' hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def on_train_epoch_end(self):
        self.log("train/loss", 10.0 + self.current_epoch)

    def on_validation_epoch_end(self):
        self.log("val/loss", 5.0 - self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)

    val_dataloader = train_dataloader


def test_curves_take_values_a_module_logs_in_its_own_epoch_end_hooks(fast_trainer, tmp_path):
    plots = TrainingPlots(dirpath=str(tmp_path))
    pl.Trainer(**{**fast_trainer, "callbacks": [plots]}, max_epochs=3, num_sanity_val_steps=0).fit(_LogsInItsOwnHooks())
    assert plots.history["val/loss"] == [5.0, 4.0, 3.0]
    assert plots.history["train/loss"] == [10.0, 11.0, 12.0]
    assert_real_png(tmp_path / "curves.png")


def test_training_curve_goes_on_after_an_epoch_it_missed():
    from types import SimpleNamespace

    plots = TrainingPlots()
    plots.history = {"train/loss": [1.0]}  # a checkpoint written before the end of epoch 1
    plots._record_train(SimpleNamespace(callback_metrics={"train/loss": torch.tensor(3.0)}), 3)
    got = plots.history["train/loss"]
    assert got[0] == 1.0 and np.isnan(got[1]) and np.isnan(got[2]) and got[3] == 3.0


def test_reliability_diagram_prints_the_ece_the_module_logs_as_test_ece(fast_trainer, tmp_path):
    pl.seed_everything(0)
    dm = DigitsDataModule()
    model = SimpleCNN(channels=(4, 8), hidden=())
    plots = TrainingPlots(dirpath=str(tmp_path))
    trainer = pl.Trainer(**fast_trainer, max_epochs=1, callbacks=[plots])
    trainer.fit(model, dm)
    result = trainer.test(model, dm, verbose=False)[0]
    assert result["test/ece"] > 0
    assert plots.calibration_errors["plain"] == pytest.approx(result["test/ece"], abs=1e-6)
