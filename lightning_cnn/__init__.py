"""lightning_cnn: configurable, tested PyTorch Lightning pieces for training CNN image classifiers."""

from lightning_cnn.data import ClassifierDataModule, DigitsDataModule, stratified_split
from lightning_cnn.losses import build_loss
from lightning_cnn.models import ClassifierModule, SimpleCNN
from lightning_cnn.optim import build_optimizer, build_scheduler

__version__ = "0.1.0"

__all__ = [
    "ClassifierDataModule",
    "ClassifierModule",
    "DigitsDataModule",
    "SimpleCNN",
    "__version__",
    "build_loss",
    "build_optimizer",
    "build_scheduler",
    "stratified_split",
]
