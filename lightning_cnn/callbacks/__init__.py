"""Callbacks that work in any Lightning Trainer with any classifier LightningModule."""

from lightning_cnn.callbacks.averaging import EMAWeightAveraging
from lightning_cnn.callbacks.early_stopping import EarlyStopping, EarlyStoppingArgumentError
from lightning_cnn.callbacks.ensemble import EnsembleEvaluation
from lightning_cnn.callbacks.guard import FiniteLossGuard, NonFiniteLossError
from lightning_cnn.callbacks.plots import TrainingPlots
from lightning_cnn.callbacks.predictions import PredictionWriter
from lightning_cnn.callbacks.preview import AugmentationPreview, save_augmentation_preview
from lightning_cnn.callbacks.snapshot import SnapshotBest
from lightning_cnn.callbacks.snapshot_ensemble import SnapshotEnsemble, cyclic_cosine_lr
from lightning_cnn.callbacks.summary import RunSummary
from lightning_cnn.callbacks.tta import TestTimeAugmentation

__all__ = [
    "AugmentationPreview",
    "EMAWeightAveraging",
    "EarlyStopping",
    "EarlyStoppingArgumentError",
    "EnsembleEvaluation",
    "FiniteLossGuard",
    "NonFiniteLossError",
    "PredictionWriter",
    "RunSummary",
    "SnapshotBest",
    "SnapshotEnsemble",
    "TestTimeAugmentation",
    "TrainingPlots",
    "cyclic_cosine_lr",
    "save_augmentation_preview",
]
