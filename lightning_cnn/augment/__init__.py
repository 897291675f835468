"""Batched image augmentation with independent random parameters per sample (plain torch, no Lightning).

Every transform draws its parameters for each sample of a batch (:meth:`BatchTransform.make_params`)
and applies them in one vectorized call (:meth:`BatchTransform.transform`): flips are masks, rotation,
affine and random resized crop are one affine grid per batch (consecutive geometric transforms are
composed into a single ``F.affine_grid`` + ``F.grid_sample``), colour changes are broadcast factors.
torchvision's v2 transforms, given a batch tensor, draw one set of parameters for the whole batch;
these draw one per sample. Each transform also gives its per-sample torchvision twin
(:meth:`BatchTransform.to_torchvision`), so one spec runs in loader workers or on the device.
Inputs are float images ``[B, C, H, W]`` in ``[0, 1]``; they are never modified in place.

- :mod:`~lightning_cnn.augment.base`: :class:`BatchTransform` and the per-sample random draws.
- :mod:`~lightning_cnn.augment.geometry`: flips, affine, rotation, random resized crop.
- :mod:`~lightning_cnn.augment.color`: brightness, contrast, saturation, hue.
- :mod:`~lightning_cnn.augment.noise`: Gaussian noise, random erasing.
- :mod:`~lightning_cnn.augment.policy_ops`, :mod:`~lightning_cnn.augment.policies`: RandAugment,
  TrivialAugment and AutoAugment, each sample its own operations and magnitudes.
- :mod:`~lightning_cnn.augment.container`: :class:`BatchAugmentation`, a sequence sharing one resampling.
- :mod:`~lightning_cnn.augment.factory`: the names, the presets and :func:`build_augmentation`.
"""

from lightning_cnn.augment.base import BatchTransform
from lightning_cnn.augment.color import ColorJitter
from lightning_cnn.augment.container import BatchAugmentation
from lightning_cnn.augment.factory import (
    AUGMENTATION_NAMES,
    AUGMENTATIONS,
    POLICY_NAMES,
    PRESET_NAMES,
    PRESETS,
    AugmentationName,
    AugmentSpec,
    PresetName,
    build_augmentation,
)
from lightning_cnn.augment.geometry import HorizontalFlip, RandomAffine, RandomResizedCrop, RandomRotation, VerticalFlip
from lightning_cnn.augment.noise import GaussianNoise, RandomErasing
from lightning_cnn.augment.policies import AutoAugment, RandAugment, TrivialAugment

__all__ = [
    "AUGMENTATIONS",
    "AUGMENTATION_NAMES",
    "AugmentSpec",
    "AutoAugment",
    "AugmentationName",
    "BatchAugmentation",
    "BatchTransform",
    "ColorJitter",
    "GaussianNoise",
    "HorizontalFlip",
    "POLICY_NAMES",
    "PRESETS",
    "PRESET_NAMES",
    "PresetName",
    "RandAugment",
    "RandomAffine",
    "RandomErasing",
    "RandomResizedCrop",
    "RandomRotation",
    "TrivialAugment",
    "VerticalFlip",
    "build_augmentation",
]
