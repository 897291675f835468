"""Figures to every logger that takes images: TensorBoard, MLflow and Weights & Biases, beside the run's PNG files.

The callbacks that draw (:class:`~lightning_cnn.TrainingPlots`, :class:`~lightning_cnn.AugmentationPreview`)
always write their PNG files into the run folder; :func:`send_figure` then hands each file to the trainer's
loggers that keep images:

- :class:`~lightning.pytorch.loggers.TensorBoardLogger`: an image summary under the tag (``add_image``);
- :class:`~lightning.pytorch.loggers.MLFlowLogger`: the PNG file as an artifact of the run, in the tag's folder
  (``plots/curves.png``; ``MlflowClient.log_artifact``, which ``mlflow-skinny`` has; a local ``file:`` tracking
  URI needs ``MLFLOW_ALLOW_FILE_STORE=true`` from MLflow 3 on);
- :class:`~lightning.pytorch.loggers.WandbLogger`: a ``wandb.Image`` under the tag (``log_image``; online or
  ``offline=True``).

Other loggers (CSV, none) get nothing: the PNG files are the record. The logger packages are never imported
here; a logger object of one of these kinds exists only when its package is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

__all__ = ["image_loggers", "send_figure"]


def image_loggers(trainer: pl.Trainer) -> list[Any]:
    """The trainer's loggers that :func:`send_figure` sends images to (TensorBoard, MLflow, W&B)."""
    return [lg for lg in trainer.loggers if isinstance(lg, (TensorBoardLogger, MLFlowLogger, WandbLogger))]


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def send_figure(trainer: pl.Trainer, tag: str, path: Path, pixels: np.ndarray | None = None) -> list[str]:
    """Send the PNG at ``path`` under ``tag`` (e.g. ``"plots/curves"``) to every logger that takes images.

    Call it on rank 0 (it logs what it is given, once per call).

    Args:
        trainer: whose loggers receive the figure, at its ``global_step``.
        tag: the figure's name in the loggers.
        path: the PNG file (already written in the run folder).
        pixels: the image ``[H, W, 3]`` uint8 to show instead of the file's pixels (TensorBoard and W&B).

    Returns:
        The class names of the loggers that received it, in the trainer's order.
    """
    sent = []
    step = trainer.global_step
    for logger in image_loggers(trainer):
        if isinstance(logger, TensorBoardLogger):
            image = _pixels(path) if pixels is None else pixels
            logger.experiment.add_image(tag, image, step, dataformats="HWC")
        elif isinstance(logger, MLFlowLogger):  # the file itself, in the tag's folder: plots/curves.png
            folder = str(Path(tag).parent) if Path(tag).parent != Path(".") else None
            logger.experiment.log_artifact(logger.run_id, str(path), artifact_path=folder)
        else:
            logger.log_image(key=tag, images=[_pixels(path) if pixels is None else pixels], step=step)
        sent.append(type(logger).__name__)
    return sent
