"""Data sources: DataModules over concrete datasets (digits, image folders, arrays, torchvision datasets)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from lightning_cnn._utils.validation import check_choice
from lightning_cnn.data.augment import AugmentOn, AugmentSpec
from lightning_cnn.data.datamodule import ClassifierDataModule, NormalizeName

__all__ = [
    "ArrayDataModule",
    "BadImageError",
    "DigitsDataModule",
    "IMAGE_EXTENSIONS",
    "ImageFolderDataModule",
    "TorchvisionDataModule",
    "TorchvisionName",
    "list_image_folder",
    "load_image",
]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def _check_image_size(image_size: int | None) -> None:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"Expected image_size to be an int >= 1 or None, but got {image_size!r}.")


class DigitsDataModule(ClassifierDataModule):
    """scikit-learn's bundled handwritten digits: 1,797 grayscale 8×8 images of 10 classes, no download.

    Pixel values 0-16 are scaled to [0, 1]. ``image_size`` resizes (bilinear) and ``rgb`` repeats the
    channel three times, e.g. to feed an ImageNet backbone.

    Args:
        batch_size: samples per batch.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test set.
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        image_size: resize the 8×8 images to this size (``None``: keep 8×8).
        rgb: three channels instead of one.
        augment: augmentation of training images: a preset (``"light"``, ...), a list or a dict.
        augment_on: ``"cpu"`` (per sample, in the loader), ``"device"`` (batched) or ``"auto"``.
        num_workers: loader worker processes (0 suits in-memory data).
        pin_memory: pin host memory (``None``: when a GPU is used).
        device_resident: keep the training split on the trainer's device and draw shuffled batches there.

    Example:
        >>> dm = DigitsDataModule()
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (10, 1, 8)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set)
        (1259, 269)
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        normalize: NormalizeName = "dataset",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        image_size: int | None = None,
        rgb: bool = False,
        augment: AugmentSpec = None,
        augment_on: AugmentOn = "cpu",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            normalize=normalize,
            mean=mean,
            std=std,
            augment=augment,
            augment_on=augment_on,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device_resident=device_resident,
        )
        _check_image_size(image_size)
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


# ---------------------------------------------------------------------------------------------- image folders
class BadImageError(ValueError):
    """An image file that cannot be read or decoded; the message names its path."""

    def __init__(self, path: str | Path, reason: BaseException | str) -> None:
        self.path = str(path)
        super().__init__(
            f"Cannot read image {self.path}: {reason}. Fix or remove the file, or pass skip_bad_files=True to skip"
            " unreadable images (they are counted in a warning)."
        )


def list_image_folder(
    root: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS, class_names: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """List the images of a folder of class subfolders (``root/<class>/**/<image>``) without opening them.

    Classes are the subfolder names in sorted order (or ``class_names``, e.g. a training folder's classes
    for its test folder); files are sorted within each class, so the listing is the same on every
    machine and rank.

    Args:
        root: the folder.
        extensions: file name endings that count as images (case-insensitive).
        class_names: the classes to expect; a subfolder outside them is an error.

    Returns:
        ``(paths, labels, class_names)``.

    Raises:
        FileNotFoundError: when ``root`` is not a folder.
        ValueError: for no class folders, a single class, an empty class folder, or a class not in ``class_names``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist or is not a folder.")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not found:
        raise ValueError(
            f"Image folder {root} has no class subfolders: expected one folder of images per class,"
            f" e.g. {root / 'cat' / '0001.png'}."
        )
    if class_names is None:
        if len(found) < 2:
            raise ValueError(
                f"Image folder {root} has only one class folder ({found[0]!r}): a classifier needs at least 2 classes."
            )
        classes = found
    else:
        classes = list(class_names)
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise ValueError(
                f"Image folder {root} has class folders {unknown} that are not among the classes {classes}."
            )
    exts = tuple(e.lower() for e in _check_extensions(extensions))
    paths: list[str] = []
    labels: list[int] = []
    # A link inside a class folder to the root or to another class folder would give images a second label.
    others = {os.path.realpath(root)} | {os.path.realpath(root / n) for n in classes}
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue  # a test folder may lack a class
        files = _image_files(folder, exts, skip=others - {os.path.realpath(folder)})
        if not files:
            raise ValueError(
                f"Class folder {folder} has no images (files ending in {', '.join(exts)}): add images or remove it."
            )
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), classes


def _check_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """File name endings as a tuple, each with its dot (``"png"`` means ``".png"``; a bare string is one ending)."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    exts = tuple(extensions)
    bad = [e for e in exts if not isinstance(e, str) or not e.strip(".")]
    if bad:
        raise ValueError(f"Expected extensions to be file endings such as ('.png', '.jpg'), but got {exts!r}.")
    return tuple(e if e.startswith(".") else f".{e}" for e in exts)


def _image_files(
    folder: str | Path, extensions: Sequence[str], skip: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """The image files under ``folder`` at any depth (names ending in ``extensions``, no hidden files), sorted.

    Linked subfolders are followed, as torchvision's ``ImageFolder`` does, each real folder once: a loop of links
    ends, and the same images do not come twice (they could then land in both training and test). Folders whose
    real path is in ``skip`` are not entered.
    """
    exts = tuple(e.lower() for e in extensions)
    found: list[str] = []
    seen: set[str] = set()
    for d, dirs, fs in os.walk(folder, followlinks=True):
        real = os.path.realpath(d)
        if real in seen or real in skip:
            dirs[:] = []
            continue
        seen.add(real)
        found += (os.path.join(d, f) for f in fs)
    return sorted(p for p in found if p.lower().endswith(exts) and not os.path.basename(p).startswith("."))


def load_image(
    path: str | Path,
    color: Literal["rgb", "grayscale"] = "rgb",
    image_size: int | None = None,
    resize_mode: Literal["stretch", "center_crop"] = "stretch",
) -> torch.Tensor:
    """Decode an image file to a float tensor ``[C, H, W]`` in ``[0, 1]``.

    8-bit images are divided by 255; 16-bit grayscale images (PIL modes ``I;16*``, and ``I`` with values up
    to 65535) by 65535, as :func:`torchvision.transforms.v2.functional.to_dtype` scales ``uint16``;
    32-bit float images (mode ``F``) are taken as they are and must lie in ``[0, 1]``.

    Args:
        path: the file.
        color: ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
        image_size: resize to ``image_size × image_size`` (``None``: keep the size).
        resize_mode: ``"stretch"`` resizes to the square; ``"center_crop"`` resizes the shorter side and
            crops the centre.

    Raises:
        BadImageError: when the file cannot be read or decoded (its path is in the message).
    """
    from PIL import Image

    try:
        img: Image.Image
        with Image.open(path) as opened:
            opened.load()
            high = _high_depth_as_float(opened)
            img = opened.convert("RGB" if color == "rgb" else "L") if high is None else high
        if image_size is not None:
            w, h = img.size
            if resize_mode == "center_crop":
                scale = image_size / min(w, h)
                nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
                img = img.resize((nw, nh), Image.Resampling.BILINEAR)
                left, top = (nw - image_size) // 2, (nh - image_size) // 2
                img = img.crop((left, top, left + image_size, top + image_size))
            elif (w, h) != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.float32) if img.mode == "F" else np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadImageError(path, err) from err
    x = torch.from_numpy(array.copy())
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
    if img.mode != "F":
        return x.float().div_(255.0)
    return x.expand(3, -1, -1).contiguous() if color == "rgb" else x


def _high_depth_as_float(img: Any) -> Any:
    """A 16-bit or 32-bit single-channel PIL image as a float (mode ``F``) image in ``[0, 1]``, else ``None``.

    ``convert("L")`` would clip such images at 255 instead of scaling them.
    """
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return None
    array = np.asarray(img).astype(np.float32)
    if array.size == 0:
        raise ValueError("the image has no pixels")
    low, high = float(array.min()), float(array.max())
    if img.mode == "F":
        if low < 0.0 or high > 1.0 or not np.isfinite(array).all():
            raise ValueError(f"a 32-bit float image must have values in [0, 1], but has [{low:g}, {high:g}]")
    elif low < 0 or high > 65535:
        raise ValueError(
            f"a 32-bit integer image must have values in [0, 65535] (16 bits), but has [{low:g}, {high:g}]"
        )
    else:
        array /= 65535.0
    return Image.fromarray(array)


class _FileDataset(Dataset):
    """``(image, label)`` per file, or ``(image,)`` without labels."""

    def __init__(self, paths: list[str], labels: np.ndarray | None, options: dict[str, Any]) -> None:
        self.paths, self.labels, self.options = paths, labels, options

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor]:
        image = load_image(self.paths[index], **self.options)
        return (image,) if self.labels is None else (image, int(self.labels[index]))


class ImageFolderDataModule(ClassifierDataModule):
    """A folder of class subfolders (``root/<class>/<image>``), split into train / val / test by class.

    Listing the files opens none of them, so :meth:`labels` and the split are cheap; images are decoded
    in the loader workers. With ``test_root`` the test set is that folder, listed and opened only in the
    ``test`` stage, and ``root`` splits into train and val only. An unreadable or corrupt image raises
    :class:`BadImageError` naming its path; with ``skip_bad_files`` each split's files are decoded once
    when its dataset is built, and the bad ones are dropped and counted in a warning.

    Args:
        root: the folder of class subfolders.
        test_root: a separate test folder with the same class names (``None``: split one off ``root``).
        predict_root: a folder of unlabelled images (any depth) for ``predict`` (``None``: predict the test set).
        image_size: resize every image to this square size (``None``: keep sizes; they must then agree).
        resize_mode: ``"stretch"`` or ``"center_crop"`` (resize the shorter side, crop the centre).
        color: ``"rgb"`` or ``"grayscale"``.
        extensions: file name endings that count as images.
        skip_bad_files: drop unreadable images (with a warning that counts them) instead of failing.
        batch_size: samples per batch.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test set (unused with ``test_root``).
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        augment: augmentation of training images: a preset, a list or a dict.
        augment_on: ``"cpu"``, ``"device"`` or ``"auto"``.
        num_workers: loader worker processes (they decode the images).
        pin_memory: pin host memory (``None``: when a GPU is used).
        device_resident: keep the training split on the trainer's device and draw shuffled batches there.

    Raises:
        FileNotFoundError: when ``root`` is not a folder (at first use).
        ValueError: for no class folders, one class, an empty class folder (at first use), or bad arguments.
    """

    def __init__(
        self,
        root: str,
        test_root: str | None = None,
        predict_root: str | None = None,
        image_size: int | None = None,
        resize_mode: Literal["stretch", "center_crop"] = "stretch",
        color: Literal["rgb", "grayscale"] = "rgb",
        extensions: list[str] | None = None,
        skip_bad_files: bool = False,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        normalize: NormalizeName = "dataset",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: AugmentSpec = None,
        augment_on: AugmentOn = "cpu",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            normalize=normalize,
            mean=mean,
            std=std,
            augment=augment,
            augment_on=augment_on,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device_resident=device_resident,
        )
        _check_image_size(image_size)
        check_choice("resize_mode", resize_mode, ("stretch", "center_crop"))
        check_choice("color", color, ("rgb", "grayscale"))
        self.save_hyperparameters()
        self.root = str(root)
        self.test_root = None if test_root is None else str(test_root)
        self.predict_root = None if predict_root is None else str(predict_root)
        self._image_size = image_size
        self.skip_bad_files = skip_bad_files
        self.extensions = _check_extensions(extensions) if extensions else IMAGE_EXTENSIONS
        self._options: dict[str, Any] = {"color": color, "image_size": image_size, "resize_mode": resize_mode}
        self.color = color
        self._listing: tuple[list[str], np.ndarray, list[str]] | None = None
        self._good: dict[str, bool] = {}

    def _list(self) -> tuple[list[str], np.ndarray, list[str]]:
        if self._listing is None:
            self._listing = list_image_folder(self.root, self.extensions)
        return self._listing

    def labels(self) -> np.ndarray:
        return self._list()[1]

    @property
    def class_names(self) -> list[str]:
        return self._list()[2]

    @property
    def in_channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def image_size(self) -> int | None:
        return self._image_size

    @property
    def has_test_source(self) -> bool:
        return self.test_root is not None

    def _dataset(self, paths: list[str], labels: np.ndarray | None, folder: str) -> Dataset:
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
            paths, labels = [paths[i] for i in keep], (labels[keep] if labels is not None else None)
        return _FileDataset(paths, labels, self._options)

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
        return self._dataset([paths[i] for i in indices], labels[indices], self.root)

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
        paths = _image_files(root, self.extensions)
        if not paths:
            exts = ", ".join(e.lower() for e in self.extensions)
            raise ValueError(f"predict_root={self.predict_root!r} holds no images (files ending in {exts}).")
        return self._dataset(paths, None, str(root))


# ---------------------------------------------------------------------------------------------- arrays
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


class _ArrayDataset(Dataset):
    def __init__(self, images: torch.Tensor, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return x, int(self.labels[index])


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
        batch_size: samples per batch.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test set (unused with an explicit test set).
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        augment: augmentation of training images: a preset, a list or a dict.
        augment_on: ``"cpu"``, ``"device"`` or ``"auto"``.
        num_workers: loader worker processes.
        pin_memory: pin host memory (``None``: when a GPU is used).
        device_resident: keep the training split on the trainer's device and draw shuffled batches there.

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
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        normalize: NormalizeName = "dataset",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: AugmentSpec = None,
        augment_on: AugmentOn = "cpu",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            normalize=normalize,
            mean=mean,
            std=std,
            augment=augment,
            augment_on=augment_on,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device_resident=device_resident,
        )
        if (x is None) == (path is None):
            raise ValueError("Expected either x and y (arrays) or path (an .npz file), but got both or neither.")
        if x is not None and y is None:
            raise ValueError("Expected y (labels) with x, but got y=None.")
        if (test_x is None) != (test_y is None):
            raise ValueError("Expected test_x and test_y to be given together, but got only one of them.")
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
        return _ArrayDataset(x[torch.from_numpy(indices)], y[indices])

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
        return _ArrayDataset(x, y)


# ---------------------------------------------------------------------------------------------- torchvision
TorchvisionName = Literal["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN"]
_TORCHVISION: dict[str, tuple[int, int]] = {  # name: (classes, channels)
    "MNIST": (10, 1),
    "FashionMNIST": (10, 1),
    "CIFAR10": (10, 3),
    "CIFAR100": (100, 3),
    "SVHN": (10, 3),
}


def _torchvision_folder(name: str, root: Path) -> Path:
    return {
        "MNIST": root / "MNIST" / "raw",
        "FashionMNIST": root / "FashionMNIST" / "raw",
        "CIFAR10": root / "cifar-10-batches-py",
        "CIFAR100": root / "cifar-100-python",
        "SVHN": root,
    }[name]


class TorchvisionDataModule(ClassifierDataModule):
    """MNIST, FashionMNIST, CIFAR10, CIFAR100 or SVHN through :mod:`torchvision.datasets`, by name.

    The official training set splits into train and val; the official test set is the test set, opened
    only in the ``test`` stage. With ``download=False`` the files must already be under ``root``; without
    them the error names the folder looked in.

    Args:
        name: ``"MNIST"``, ``"FashionMNIST"``, ``"CIFAR10"``, ``"CIFAR100"`` or ``"SVHN"``.
        root: folder of the dataset files (torchvision's layout).
        download: download the files into ``root`` when they are missing.
        batch_size: samples per batch.
        val_fraction: share of each class of the training set for validation.
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        augment: augmentation of training images: a preset, a list or a dict.
        augment_on: ``"cpu"``, ``"device"`` or ``"auto"``.
        num_workers: loader worker processes.
        pin_memory: pin host memory (``None``: when a GPU is used).
        device_resident: keep the training split on the trainer's device and draw shuffled batches there.

    Example:
        >>> dm = TorchvisionDataModule("CIFAR10", root="data")
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (10, 3, 32)
    """

    def __init__(
        self,
        name: TorchvisionName = "MNIST",
        root: str = "data",
        download: bool = False,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        normalize: NormalizeName = "dataset",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: AugmentSpec = None,
        augment_on: AugmentOn = "cpu",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            test_fraction=0.0,
            split_seed=split_seed,
            normalize=normalize,
            mean=mean,
            std=std,
            augment=augment,
            augment_on=augment_on,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device_resident=device_resident,
        )
        check_choice("name", name, tuple(_TORCHVISION))
        self.save_hyperparameters()
        self.dataset_name = name
        self.root = str(root)
        self.download = download
        self._train: tuple[torch.Tensor, np.ndarray, list[str]] | None = None

    def _open(self, train: bool) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        from torchvision import datasets

        cls = getattr(datasets, self.dataset_name)
        root = Path(self.root).expanduser().resolve()
        kwargs: dict[str, Any] = (
            {"split": "train" if train else "test"} if self.dataset_name == "SVHN" else {"train": train}
        )
        try:
            ds = cls(str(root), download=self.download, **kwargs)
        except RuntimeError as err:
            if self.download:
                raise
            raise FileNotFoundError(
                f"{self.dataset_name} {'training' if train else 'test'} files not found in"
                f" {_torchvision_folder(self.dataset_name, root)}"
                f" (root={self.root!r}): put them there in torchvision's layout, or pass download=True"
                f" (--data.download true) on a machine with network access. ({err})"
            ) from err
        except OSError as err:
            raise OSError(f"Could not download {self.dataset_name} into {root}: {err}") from err
        data = ds.data
        x = torch.as_tensor(np.asarray(data))
        if x.ndim == 3:
            x = x.unsqueeze(1)  # MNIST-like [N, H, W]
        elif self.dataset_name != "SVHN":
            x = x.permute(0, 3, 1, 2)  # CIFAR [N, H, W, C]; SVHN is already [N, C, H, W]
        labels = np.asarray(ds.labels if self.dataset_name == "SVHN" else ds.targets, dtype=np.int64)
        names = list(getattr(ds, "classes", None) or [str(i) for i in range(_TORCHVISION[self.dataset_name][0])])
        return x.contiguous(), labels, names

    def _train_data(self) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        if self._train is None:
            self._train = self._open(train=True)
        return self._train

    def labels(self) -> np.ndarray:
        return self._train_data()[1]

    @property
    def class_names(self) -> list[str]:
        return self._train_data()[2]

    @property
    def num_classes(self) -> int:
        return _TORCHVISION[self.dataset_name][0]

    @property
    def in_channels(self) -> int:
        return _TORCHVISION[self.dataset_name][1]

    @property
    def image_size(self) -> int:
        return 28 if self.dataset_name in ("MNIST", "FashionMNIST") else 32

    @property
    def has_test_source(self) -> bool:
        return True

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        x, y, _ = self._train_data()
        return _ArrayDataset(x[torch.from_numpy(indices)], y[indices])

    def make_test_dataset(self) -> Dataset:
        x, y, _ = self._open(train=False)
        return _ArrayDataset(x, y)
