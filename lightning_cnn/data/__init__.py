"""LightningDataModules: sources, splits, normalization and augmentation."""

from lightning_cnn.data.augment import (
    AUGMENTATIONS,
    PRESETS,
    BatchAugmentation,
    BatchTransform,
    build_augmentation,
    resolve_augment_on,
)
from lightning_cnn.data.datamodule import ClassifierDataModule
from lightning_cnn.data.resident import DeviceResidentLoader
from lightning_cnn.data.sampling import ResumableDataLoader, SeededSampler
from lightning_cnn.data.sources import (
    ArrayDataModule,
    BadImageError,
    DigitsDataModule,
    ImageFolderDataModule,
    TorchvisionDataModule,
)
from lightning_cnn.data.splits import stratified_split

__all__ = [
    "AUGMENTATIONS",
    "ArrayDataModule",
    "BadImageError",
    "BatchAugmentation",
    "BatchTransform",
    "ClassifierDataModule",
    "DeviceResidentLoader",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "PRESETS",
    "ResumableDataLoader",
    "SeededSampler",
    "TorchvisionDataModule",
    "build_augmentation",
    "resolve_augment_on",
    "stratified_split",
]
