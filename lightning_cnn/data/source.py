"""What a data source gives a DataModule: labels, datasets for given indices, class names, image shape."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

__all__ = ["DataSource"]


class DataSource:
    """The interface a source implements for :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    :meth:`labels` gives the class index of every sample (cheap: no image decoded) and :meth:`make_dataset`
    a dataset of ``(image, label)`` for given indices; a source with an explicit test set also sets
    :attr:`has_test_source` and implements :meth:`make_test_dataset`.
    """

    def labels(self) -> np.ndarray:
        """Class index of every sample of the split pool (train, val and, without a test source, test)."""
        raise NotImplementedError

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        """A dataset of ``(image [C, H, W] float in [0, 1], label)`` for the given sample indices of the pool."""
        raise NotImplementedError

    @property
    def has_test_source(self) -> bool:
        """Whether the test set is a source of its own (then the pool splits into train and val only)."""
        return False

    def make_test_dataset(self) -> Dataset:
        """The explicit test set (only called in the ``test`` and ``predict`` stages)."""
        raise NotImplementedError

    def make_predict_dataset(self) -> Dataset | None:
        """Images to predict other than the test set, as a dataset of ``(image,)`` (``None``: predict the test set)."""
        return None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, in class-index order."""
        raise NotImplementedError

    @property
    def in_channels(self) -> int:
        """Channels of the images (1 grayscale, 3 RGB)."""
        raise NotImplementedError

    @property
    def image_size(self) -> int | None:
        """The larger side of the images the loaders give, when known."""
        return None
