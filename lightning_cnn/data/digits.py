"""The handwritten digits scikit-learn bundles, shipped with this package, as a DataModule (no download).

``digits.npz`` beside this module holds scikit-learn's copy of the test set of the UCI "Optical Recognition of
Handwritten Digits" data (E. Alpaydin, C. Kaynak, 1998), licensed by the UCI
Machine Learning Repository under CC BY 4.0: 1,797 images of 8x8 integer pixels 0-16 (``uint8``) and their labels.
``digits.md`` beside it says the same. Reading it needs neither scikit-learn nor SciPy.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from lightning_cnn._utils.validation import check_optional_size
from lightning_cnn.data.base import ClassifierDataModule

__all__ = ["DigitsDataModule", "load_digit_arrays"]


def load_digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits: images ``[1797, 8, 8]`` with pixels 0-16 and labels ``[1797]``, both ``int64``.

    The same values as ``sklearn.datasets.load_digits()``'s ``images`` and ``target``, without scikit-learn.

    Example:
        >>> images, labels = load_digit_arrays()
        >>> images.shape, int(images.max()), labels[:5].tolist()
        ((1797, 8, 8), 16, [0, 1, 2, 3, 4])
    """
    with resources.files(__package__).joinpath("digits.npz").open("rb") as file, np.load(file) as arrays:
        return arrays["images"].astype(np.int64), arrays["target"].astype(np.int64)


class DigitsDataModule(ClassifierDataModule):
    """The handwritten digits of scikit-learn, shipped with this package: 1,797 grayscale 8×8 images of 10 classes.

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
            images, labels = load_digit_arrays()
            x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
            if self._image_size is not None and self._image_size != 8:
                x = F.interpolate(x, size=(self._image_size,) * 2, mode="bilinear", align_corners=False)
            if self.rgb:
                x = x.repeat(1, 3, 1, 1)
            self._images = x.contiguous()
            self._labels = labels
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
