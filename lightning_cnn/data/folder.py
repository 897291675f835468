"""A folder of class subfolders as a DataModule: listed without decoding, images decoded in the loader workers."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice, check_optional_size
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import FileDataset
from lightning_cnn.data.readers import (
    COLOR_MODES,
    IMAGE_EXTENSIONS,
    RESIZE_MODES,
    BadImageError,
    ColorMode,
    ResizeMode,
    check_extensions,
    image_files,
    list_image_folder,
    load_image,
)

__all__ = ["ImageFolderDataModule"]


class ImageFolderDataModule(ClassifierDataModule):
    """A folder of class subfolders (``root/<class>/<image>``), split into train / val / test by class.

    Listing the files opens none of them, so :meth:`labels` and the split are cheap; images are decoded
    in the loader workers. With ``test_root`` the test set is that folder, listed and opened only in the
    ``test`` stage, and ``root`` splits into train and val only. An unreadable or corrupt image raises
    :class:`BadImageError` naming its path; with ``skip_bad_files`` each split's files are decoded once
    when its dataset is built, and the bad ones are dropped and counted in a warning.

    Without ``root`` it predicts ``predict_root`` only (no split, no statistics: a model that owns its input
    contract normalizes itself), with the class names given in ``class_names``; ``lightning-cnn predict --ckpt_path``
    takes them, the color and the image size from the checkpoint.

    Args:
        root: the folder of class subfolders (``None``: only predict ``predict_root``).
        test_root: a separate test folder with the same class names (``None``: split one off ``root``).
        predict_root: a folder of unlabelled images (any depth) for ``predict`` (``None``: predict the test set).
        image_size: resize every image to this square size (``None``: keep sizes; they must then agree).
        resize_mode: ``"stretch"`` or ``"center_crop"`` (resize the shorter side, crop the centre).
        color: ``"rgb"`` or ``"grayscale"``.
        extensions: file name endings that count as images.
        skip_bad_files: drop unreadable images (with a warning that counts them) instead of failing.
        class_names: the class names in index order, for predicting without ``root`` (with ``root``: its subfolders).
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``,
            ``augment``, ``num_workers``, ...), passed on to :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Raises:
        FileNotFoundError: when ``root`` is not a folder (at first use).
        ValueError: for no class folders, one class, an empty class folder (at first use), or bad arguments.
    """

    def __init__(
        self,
        root: str | None = None,
        test_root: str | None = None,
        predict_root: str | None = None,
        image_size: int | None = None,
        resize_mode: ResizeMode = "stretch",
        color: ColorMode = "rgb",
        extensions: list[str] | None = None,
        skip_bad_files: bool = False,
        class_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_optional_size("image_size", image_size)
        check_choice("resize_mode", resize_mode, RESIZE_MODES)
        check_choice("color", color, COLOR_MODES)
        self.save_hyperparameters()
        if root is None and (predict_root is None or class_names is None):
            raise ValueError(
                "Expected root (the folder of class subfolders), or predict_root with class_names to only predict,"
                f" but got root=None, predict_root={predict_root!r}, class_names={class_names!r}."
            )
        self.root = None if root is None else str(root)
        self._given_names = None if class_names is None else [str(n) for n in class_names]
        self.test_root = None if test_root is None else str(test_root)
        self.predict_root = None if predict_root is None else str(predict_root)
        self._image_size = image_size
        self.skip_bad_files = skip_bad_files
        self.extensions = check_extensions(extensions) if extensions else IMAGE_EXTENSIONS
        self._options: dict[str, Any] = {"color": color, "image_size": image_size, "resize_mode": resize_mode}
        self.color = color
        self._listing: tuple[list[str], np.ndarray, list[str]] | None = None
        self._good: dict[str, bool] = {}

    def _list(self) -> tuple[list[str], np.ndarray, list[str]]:
        if self.root is None:
            raise ValueError(f"{type(self).__name__} without root has no labelled images (predict_root only).")
        if self._listing is None:
            self._listing = list_image_folder(self.root, self.extensions)
        return self._listing

    def labels(self) -> np.ndarray:
        return self._list()[1]

    @property
    def class_names(self) -> list[str]:
        if self.root is None and self._given_names is not None:
            return list(self._given_names)
        return self._list()[2]

    @property
    def has_pool(self) -> bool:
        return self.root is not None

    @property
    def in_channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def image_size(self) -> int | None:
        return self._image_size

    @property
    def has_test_source(self) -> bool:
        return self.test_root is not None

    def _dataset(self, paths: list[str], labels: np.ndarray | None, folder: str, train: bool = False) -> Dataset:
        if self.skip_bad_files:
            fresh = [p for p in paths if p not in self._good]
            keep = [i for i, p in enumerate(paths) if self._readable(p)]
            bad = [p for p in fresh if not self._good[p]]  # counted once, when first found
            if bad:
                shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
                warnings.warn(
                    f"Skipped {len(bad)} of {len(fresh)} images in {folder} that could not be read: {shown}",
                    stacklevel=3,
                )
            if train and labels is not None:
                self._check_no_class_lost(paths, labels, keep, folder)
            paths, labels = [paths[i] for i in keep], (labels[keep] if labels is not None else None)
        return FileDataset(paths, labels, self._options)

    def _check_no_class_lost(self, paths: list[str], labels: np.ndarray, keep: list[int], folder: str) -> None:
        """Refuse skipping that leaves a class without training images: the model would never see it."""
        lost = sorted(set(labels.tolist()) - set(labels[keep].tolist()))
        if lost:
            names = [self.class_names[c] for c in lost]
            shown = ", ".join(p for p, c in zip(paths, labels.tolist(), strict=True) if c == lost[0])
            raise ValueError(
                f"skip_bad_files=True skipped every training image of class {names[0]!r}"
                f"{f' (and of {names[1:]})' if len(names) > 1 else ''} in {folder}: none could be read ({shown})."
                " A model trained so would never see that class. Fix those images, or remove the class folder."
            )

    def _readable(self, path: str) -> bool:
        if path not in self._good:
            try:
                load_image(path, **self._options)
                self._good[path] = True
            except BadImageError:
                self._good[path] = False
        return self._good[path]

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        paths, labels, _ = self._list()
        return self._dataset([paths[i] for i in indices], labels[indices], str(self.root), train=train)

    def make_test_dataset(self) -> Dataset:
        assert self.test_root is not None
        paths, labels, _ = list_image_folder(self.test_root, self.extensions, class_names=self.class_names)
        return self._dataset(paths, labels, self.test_root)

    def make_predict_dataset(self) -> Dataset | None:
        if self.predict_root is None:
            return None
        root = Path(self.predict_root)
        if not root.is_dir():
            raise FileNotFoundError(f"predict_root={self.predict_root!r} does not exist or is not a folder.")
        paths = image_files(root, self.extensions)
        if not paths:
            exts = ", ".join(e.lower() for e in self.extensions)
            raise ValueError(f"predict_root={self.predict_root!r} holds no images (files ending in {exts}).")
        return self._dataset(paths, None, str(root))
