"""LightningModules: the classifier base and the models built on it."""

from lightning_cnn.models.base import ClassifierModule
from lightning_cnn.models.simple_cnn import SimpleCNN
from lightning_cnn.models.transfer import TransferClassifier

__all__ = ["ClassifierModule", "SimpleCNN", "TransferClassifier"]
