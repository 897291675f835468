"""LightningDataModules: sources, splits, normalization and augmentation placement.

- :mod:`~lightning_cnn.data.base`: :class:`ClassifierDataModule`, the lifecycle, loaders and state every source shares.
- :mod:`~lightning_cnn.data.source`: the interface a source implements.
- :mod:`~lightning_cnn.data.digits`, :mod:`~lightning_cnn.data.folder`, :mod:`~lightning_cnn.data.arrays`,
  :mod:`~lightning_cnn.data.torchvision`: one source per file.
- :mod:`~lightning_cnn.data.readers`: listing image folders and decoding image files.
- :mod:`~lightning_cnn.data.datasets`: the small datasets the sources hand to loaders, and their collate.
- :mod:`~lightning_cnn.data.csv_labels`: image files with their labels in a CSV (multi-label).
- :mod:`~lightning_cnn.data.splits`: stratified splits and k-fold splits, their digest and ``splits.json``;
  :mod:`~lightning_cnn.data.multilabel_splits`: iterative stratification of a 0/1 label matrix.
- :mod:`~lightning_cnn.data.normalization`: dataset, per-instance or no normalization, as a module with buffers.
- :mod:`~lightning_cnn.data.placement`: where augmentation runs (device or loader workers).
- :mod:`~lightning_cnn.data.compatibility`: checks that a model or a checkpoint fits the data.
- :mod:`~lightning_cnn.data.sampling`, :mod:`~lightning_cnn.data.resident`: resumable training order, device-resident
  batches.
- :mod:`~lightning_cnn.data.streaming`: a dataset written by ``lightning-cnn convert``, read through litdata.
- :mod:`~lightning_cnn.data.balanced`: class-balanced or weighted draws with replacement, seeded and sharded.

The augmentations themselves are :mod:`lightning_cnn.augment` (plain torch).
"""

from lightning_cnn.augment import AUGMENTATIONS, PRESETS, BatchAugmentation, BatchTransform, build_augmentation
from lightning_cnn.data.arrays import ArrayDataModule
from lightning_cnn.data.balanced import WeightedSeededSampler
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.csv_labels import CSVImageDataModule
from lightning_cnn.data.digits import DigitsDataModule
from lightning_cnn.data.folder import ImageFolderDataModule
from lightning_cnn.data.multilabel_splits import iterative_stratification
from lightning_cnn.data.placement import resolve_augment_on
from lightning_cnn.data.readers import BadImageError
from lightning_cnn.data.resident import DeviceResidentLoader
from lightning_cnn.data.sampling import ResumableDataLoader, SeededSampler
from lightning_cnn.data.splits import kfold_split, stratified_folds, stratified_split
from lightning_cnn.data.streaming import StreamingDataModule
from lightning_cnn.data.torchvision import TorchvisionDataModule

__all__ = [
    "AUGMENTATIONS",
    "ArrayDataModule",
    "BadImageError",
    "BatchAugmentation",
    "BatchTransform",
    "CSVImageDataModule",
    "ClassifierDataModule",
    "DeviceResidentLoader",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "PRESETS",
    "ResumableDataLoader",
    "SeededSampler",
    "StreamingDataModule",
    "TorchvisionDataModule",
    "WeightedSeededSampler",
    "build_augmentation",
    "iterative_stratification",
    "kfold_split",
    "resolve_augment_on",
    "stratified_folds",
    "stratified_split",
]
