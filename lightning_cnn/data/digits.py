"""scikit-learn's bundled handwritten digits as a DataModule (no download)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from lightning_cnn._utils.validation import check_optional_size
from lightning_cnn.data.base import ClassifierDataModule

__all__ = ["DigitsDataModule"]


class DigitsDataModule(ClassifierDataModule):
    """scikit-learn's bundled handwritten digits: 1,797 grayscale 8×8 images of 10 classes, no download.

    Pixel values 0-16 are scaled to [0, 1]. ``image_size`` resizes (bilinear) and ``rgb`` repeats the
    channel three times, e.g. to feed an ImageNet backbone.

    Args:
        image_size: resize the 8×8 images to this size (``None``: keep 8×8).
        rgb: three channels instead of one.
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``,
            ``augment``, ``num_workers``, ...), passed on to :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Example:
        >>> dm = DigitsDataModule()
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (10, 1, 8)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set)
        (1259, 269)
    """

    def __init__(self, *, image_size: int | None = None, rgb: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_optional_size("image_size", image_size)
        self.save_hyperparameters()
        self._image_size = image_size
        self.rgb = rgb
        self._images: torch.Tensor | None = None
        self._labels: np.ndarray | None = None

    def _load(self) -> tuple[torch.Tensor, np.ndarray]:
        if self._images is None or self._labels is None:
            from sklearn.datasets import load_digits

            digits = load_digits()
            x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
            if self._image_size is not None and self._image_size != 8:
                x = F.interpolate(x, size=(self._image_size,) * 2, mode="bilinear", align_corners=False)
            if self.rgb:
                x = x.repeat(1, 3, 1, 1)
            self._images = x.contiguous()
            self._labels = digits.target.astype(np.int64)
        return self._images, self._labels

    def labels(self) -> np.ndarray:
        return self._load()[1]

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        images, labels = self._load()
        idx = torch.from_numpy(indices)
        return TensorDataset(images[idx], torch.from_numpy(labels)[idx])

    @property
    def class_names(self) -> list[str]:
        return [str(i) for i in range(10)]

    @property
    def in_channels(self) -> int:
        return 3 if self.rgb else 1

    @property
    def image_size(self) -> int:
        return self._image_size or 8
