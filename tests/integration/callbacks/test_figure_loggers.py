"""TrainingPlots and AugmentationPreview reach MLflow and W&B as they reach TensorBoard, and keep the PNG files."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
from PIL import Image

from lightning_cnn import DigitsDataModule, SimpleCNN, TrainingPlots
from lightning_cnn.callbacks import AugmentationPreview
from lightning_cnn.callbacks.figures import image_loggers, send_figure
from tests.helpers.images import assert_real_png

PLOTS = ("curves", "confusion_matrix", "reliability")


def _run(fast_trainer: dict, logger: object) -> tuple[pl.Trainer, TrainingPlots, AugmentationPreview]:
    pl.seed_everything(0)
    plots, preview = TrainingPlots(), AugmentationPreview()
    trainer = pl.Trainer(
        **{**fast_trainer, "logger": logger, "callbacks": [plots, preview]}, max_epochs=2, limit_train_batches=4
    )
    model, dm = SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(augment="light")
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    return trainer, plots, preview


@pytest.mark.slow
def test_figures_go_to_mlflow_as_artifacts(fast_trainer, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store on request only
    logger = MLFlowLogger(experiment_name="figures", tracking_uri=f"file:{tmp_path / 'mlruns'}")
    _, plots, preview = _run(fast_trainer, logger)
    artifacts = next((tmp_path / "mlruns").glob(f"*/{logger.run_id}/artifacts"))
    sent = {p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*.png")}
    assert sent == {*(f"plots/{name}.png" for name in PLOTS), "augment/augment_preview.png"}
    for path in plots.written:  # the run folder keeps its PNGs; the artifacts are the same files
        assert_real_png(path)
        assert (artifacts / "plots" / path.name).read_bytes() == path.read_bytes()
    assert preview.path is not None
    assert (artifacts / "augment" / preview.path.name).read_bytes() == preview.path.read_bytes()


@pytest.mark.slow
def test_figures_go_to_wandb_offline(fast_trainer, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    for name, value in {"WANDB_DIR": str(tmp_path), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, value)
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="figures")
    _, plots, _ = _run(fast_trainer, logger)
    logger.experiment.finish()
    media = list(tmp_path.rglob("media/images/**/*.png"))
    tags = {p.relative_to(next(tmp_path.rglob("media/images"))).as_posix().rsplit("_", 2)[0] for p in media}
    assert tags == {*(f"plots/{name}" for name in PLOTS), "augment/preview"}, media
    for path in media:  # real pictures, not blank
        assert np.asarray(Image.open(path).convert("L"), dtype=np.float32).std() > 10, path
    for path in plots.written:
        assert_real_png(path)
        logged = next(p for p in media if p.name.startswith(path.stem + "_"))
        assert Image.open(logged).size == Image.open(path).size


def test_loggers_without_images_get_nothing_and_the_png_stays(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    csv, tensorboard = CSVLogger(str(tmp_path)), TensorBoardLogger(str(tmp_path), name="tb")
    both = pl.Trainer(logger=[csv, tensorboard], enable_progress_bar=False, default_root_dir=tmp_path)
    assert image_loggers(both) == [tensorboard]  # what TensorBoard receives: test_plots.py reads its events
    path = tmp_path / "figure.png"
    Image.fromarray((np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)).save(path)
    before = path.read_bytes()
    only_csv = pl.Trainer(logger=CSVLogger(str(tmp_path / "csv")), enable_progress_bar=False)
    assert send_figure(only_csv, "plots/figure", path) == [] and path.read_bytes() == before
