"""Images and labels from numpy arrays, or an ``.npz`` file, as a DataModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_together
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import ArrayDataset

__all__ = ["ArrayDataModule"]


def _as_images(x: Any, name: str, channels_last: bool) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    elif t.ndim == 4 and channels_last:
        t = t.permute(0, 3, 1, 2)
    elif t.ndim != 4:
        raise ValueError(
            f"Expected {name} to have shape [N, H, W], [N, C, H, W] (or [N, H, W, C]), but got {tuple(t.shape)}."
        )
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise TypeError(f"Expected {name} to be uint8 (0-255) or float (0-1) images, but got dtype {t.dtype}.")
    return t.contiguous()


def _as_labels(y: Any, name: str, n: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"Expected {name} to be a 1-D array of class indices, but got {labels.dtype} {labels.shape}.")
    if labels.shape[0] != n:
        raise ValueError(f"Expected {name} to hold one label per image ({n}), but got {labels.shape[0]}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"Expected {name} to hold class indices >= 0, but got {int(labels.min())}.")
    return labels.astype(np.int64)


class ArrayDataModule(ClassifierDataModule):
    """Images and labels from numpy arrays, or from an ``.npz`` file (so a YAML config can name it).

    Images are ``[N, H, W]`` (grayscale), ``[N, C, H, W]``, or ``[N, H, W, C]`` with ``channels_last``;
    uint8 values are scaled to ``[0, 1]``, floats are taken as they are. An ``.npz`` file holds ``x`` and
    ``y``, and optionally ``x_test`` and ``y_test`` as an explicit test set (read only in ``test``).

    Args:
        x: images (Python callers); or ``None`` with ``path``.
        y: class indices, one per image.
        path: an ``.npz`` file with arrays ``x``, ``y`` (and optionally ``x_test``, ``y_test``).
        test_x: explicit test images (``None``: split a test set off ``x``).
        test_y: explicit test labels.
        class_names: names of the classes (``None``: ``"0"``, ``"1"``, ...).
        channels_last: images are ``[N, H, W, C]``.
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``,
            ``augment``, ``num_workers``, ...), passed on to :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> dm = ArrayDataModule(rng.random((40, 8, 8)), np.repeat([0, 1], 20), val_fraction=0.25, test_fraction=0.25)
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (2, 1, 8)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set)
        (20, 10)
    """

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        path: str | None = None,
        test_x: Any = None,
        test_y: Any = None,
        class_names: list[str] | None = None,
        channels_last: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (x is None) == (path is None):
            raise ValueError("Expected either x and y (arrays) or path (an .npz file), but got both or neither.")
        if x is not None and y is None:
            raise ValueError("Expected y (labels) with x, but got y=None.")
        check_together("test_x", test_x, "test_y", test_y)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"Expected path to be an .npz file, but {path!r} does not exist.")
        # Arrays are data, not hyperparameters: they would bloat checkpoints and break weights_only loading.
        self.save_hyperparameters(ignore=["x", "y", "test_x", "test_y"])
        self.path = path
        self.channels_last = channels_last
        self._x = None if x is None else _as_images(x, "x", channels_last)
        self._y = None if y is None else _as_labels(y, "y", len(self._x) if self._x is not None else 0)
        self._test = (test_x, test_y)
        self._names = None if class_names is None else list(class_names)
        if self._y is not None:
            self._check_labels(self._y, "y")
        if path is not None:
            with np.load(path) as data:
                self._has_test = test_x is not None or "x_test" in data.files
        else:
            self._has_test = test_x is not None

    def _check_labels(self, y: np.ndarray, name: str) -> None:
        """Refuse a label that ``class_names`` has no name for."""
        if self._names is not None and y.size and int(y.max()) >= len(self._names):
            raise ValueError(
                f"{name} holds class {int(y.max())}, but class_names has {len(self._names)} names"
                f" ({self._names!r}): give one name per class, or labels in [0, {len(self._names)})."
            )

    def _arrays(self) -> tuple[torch.Tensor, np.ndarray]:
        if self._x is None or self._y is None:
            assert self.path is not None
            with np.load(self.path) as data:
                for key in ("x", "y"):
                    if key not in data.files:
                        raise ValueError(f"Expected {self.path} to hold array {key!r}, but it holds {data.files}.")
                self._x = _as_images(data["x"], f"{self.path}:x", self.channels_last)
                self._y = _as_labels(data["y"], f"{self.path}:y", len(self._x))
                self._check_labels(self._y, f"{self.path}:y")
        return self._x, self._y

    def labels(self) -> np.ndarray:
        return self._arrays()[1]

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = [str(i) for i in range(int(self.labels().max()) + 1)]
        return self._names

    @property
    def in_channels(self) -> int:
        return int(self._arrays()[0].shape[1])

    @property
    def image_size(self) -> int:
        return int(max(self._arrays()[0].shape[-2:]))

    @property
    def has_test_source(self) -> bool:
        return self._has_test

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        x, y = self._arrays()
        return ArrayDataset(x[torch.from_numpy(indices)], y[indices])

    def make_test_dataset(self) -> Dataset:
        test_x, test_y = self._test
        if test_x is None:
            assert self.path is not None
            with np.load(self.path) as data:
                test_x, test_y = data["x_test"], data["y_test"]
        x = _as_images(test_x, "test_x", self.channels_last)
        y = _as_labels(test_y, "test_y", len(x))
        if y.size and y.max() >= self.num_classes:
            raise ValueError(f"test_y holds class {int(y.max())}, but there are only {self.num_classes} classes.")
        return ArrayDataset(x, y)
