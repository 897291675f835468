"""LightningDataModules: sources, splits and normalization."""

from lightning_cnn.data.datamodule import ClassifierDataModule
from lightning_cnn.data.sources import DigitsDataModule
from lightning_cnn.data.splits import stratified_split

__all__ = ["ClassifierDataModule", "DigitsDataModule", "stratified_split"]
