"""Images and labels from numpy arrays, or an ``.npz`` file, as a DataModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice, check_together
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import ArrayDataset
from lightning_cnn.data.multilabel_splits import check_label_matrix

__all__ = ["ARRAY_LAYOUTS", "CHANNEL_COUNTS", "ArrayDataModule", "ArrayLayout", "array_layout"]

ArrayLayout = Literal["auto", "channels_first", "channels_last"]
ARRAY_LAYOUTS: tuple[str, ...] = get_args(ArrayLayout)
#: The channel counts ``layout="auto"`` recognizes: grayscale, RGB, RGBA.
CHANNEL_COUNTS = (1, 3, 4)


def array_layout(
    shape: tuple[int, ...], name: str, layout: ArrayLayout = "auto"
) -> Literal["channels_first", "channels_last"]:
    """The layout of a 4-D image array: ``layout`` itself, or, for ``"auto"``, the one its channel count tells.

    ``"auto"`` takes the layout whose channel axis holds 1, 3 or 4 channels; when both axes could (``[N, 1, 4, 4]``),
    the one whose channels are fewer than both image sides (there: ``[N, C, H, W]`` with ``C = 1``).

    Raises:
        ValueError: when ``"auto"`` cannot tell (no axis, or either axis alike, fits), naming the shape.

    Example:
        >>> array_layout((200, 8, 8, 3), "x"), array_layout((200, 3, 8, 8), "x"), array_layout((9, 1, 4, 4), "x")
        ('channels_last', 'channels_first', 'channels_first')
    """
    if layout != "auto":
        return layout
    _, a, b, c = shape
    fits = {"channels_first": (a, (b, c)), "channels_last": (c, (a, b))}
    found = [k for k, (ch, _) in fits.items() if ch in CHANNEL_COUNTS]
    if len(found) == 2:
        found = [k for k in found if fits[k][0] < min(fits[k][1])]
    if len(found) == 1:
        return found[0]  # type: ignore[return-value]
    raise ValueError(
        f"Expected {name} to be images [N, C, H, W] or [N, H, W, C] with C in {CHANNEL_COUNTS} channels that tell"
        f" the layout apart, but got shape {tuple(shape)}. Pass layout='channels_first' ([N, C, H, W]) or"
        " layout='channels_last' ([N, H, W, C])."
    )


def _as_images(x: Any, name: str, layout: ArrayLayout) -> torch.Tensor:
    """Images ``[N, C, H, W]`` (uint8, or float in ``[0, 1]``, finite), checked; the message names ``name``."""
    array = np.asarray(x)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"Expected {name} to have shape [N, H, W], [N, C, H, W] or [N, H, W, C], but got {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"Expected {name} to hold at least one image with pixels, but got shape {array.shape}.")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"Expected {name} to be uint8 (0-255) or float (0-1) images, but got dtype {array.dtype}.")
    if array.dtype != np.uint8:
        bad = ~np.isfinite(array)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"Expected {name} to hold finite pixel values, but got {array[index]} at index {index} (image"
                f" {index[0]}; {int(bad.sum())} non-finite values in all): repair or remove those images."
            )
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"Expected {name} (float images) to hold values in [0, 1], but got values in [{low:g}, {high:g}]."
                " Scale them to [0, 1] (0-255 images: divide by 255, or pass them as uint8, which is scaled)."
            )
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    elif array_layout(tuple(t.shape), name, layout) == "channels_last":
        t = t.permute(0, 3, 1, 2)
    return t.contiguous()


def _as_labels(y: Any, name: str, n: int, class_names: list[str] | None) -> np.ndarray:
    """Class indices ``0..K-1``, one per image: every class present without ``class_names``, a name for each with.

    A 2-D array is a multi-label 0/1 matrix ``[N, L]``: one row per image, one column per label (named by
    ``class_names`` when given, which then holds ``L`` names).
    """
    labels = np.asarray(y)
    if labels.ndim == 2:
        if labels.shape[0] != n:
            raise ValueError(
                f"Expected {name} to hold one row of labels per image ({n}), but got {labels.shape[0]} rows"
                f" (shape {labels.shape})."
            )
        matrix = check_label_matrix(labels, name)
        if class_names is not None and len(class_names) != matrix.shape[1]:
            raise ValueError(
                f"{name} has {matrix.shape[1]} label columns, but class_names has {len(class_names)} names"
                f" ({class_names!r}): give one name per column."
            )
        return matrix
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Expected {name} to be a 1-D array of class indices or a 0/1 label matrix [N, L], but got"
            f" {labels.dtype} {labels.shape}."
        )
    if labels.shape[0] != n:
        raise ValueError(f"Expected {name} to hold one label per image ({n}), but got {labels.shape[0]}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"Expected {name} to hold class indices >= 0, but got {int(labels.min())}.")
    if class_names is not None:
        if labels.size and int(labels.max()) >= len(class_names):
            raise ValueError(
                f"{name} holds class {int(labels.max())}, but class_names has {len(class_names)} names"
                f" ({class_names!r}): give one name per class, or labels in [0, {len(class_names)})."
            )
        return labels.astype(np.int64)
    found = np.unique(labels)
    if found.size and int(found[-1]) != found.size - 1:
        k = found.size
        missing = np.setdiff1d(np.arange(min(int(found[-1]), k + 5)), found)[:5].tolist()
        shown = found.tolist() if k <= 12 else [*found[:6].tolist(), "...", *found[-3:].tolist()]
        raise ValueError(
            f"Expected {name} to hold the class indices 0..{k - 1} ({k} classes, each at least once), but got the"
            f" labels {shown}: classes {missing}{'...' if len(missing) == 5 else ''} have no image. Relabel to"
            f" 0..{k - 1}: np.unique({name.rsplit(':', 1)[-1]}, return_inverse=True) gives the classes found and"
            " each label's index among them."
        )
    return labels.astype(np.int64)


class ArrayDataModule(ClassifierDataModule):
    """Images and labels from numpy arrays, or from an ``.npz`` file (so a YAML config can name it).

    Images are ``[N, H, W]`` (grayscale), ``[N, C, H, W]`` or ``[N, H, W, C]``: ``layout="auto"`` tells the last
    two apart by the channel count (1, 3 or 4; see :func:`array_layout`) and refuses an array where it cannot,
    so a channels-last array is never read as ``C = H``. uint8 values are scaled to ``[0, 1]``; float images
    must lie in ``[0, 1]`` already, and every pixel must be finite (both checked when the arrays are read: at
    construction for arrays, at the first use for an ``.npz`` file). Labels are class indices ``0..K-1``:
    without ``class_names`` each index up to the largest must occur (``{1, 2}`` would leave class 0 without an
    image and is refused, naming the labels); with them, each label below ``len(class_names)``. A 0/1 matrix
    ``[N, L]`` instead makes the task multi-label (one column per label, an image may have several; see
    :mod:`~lightning_cnn.models.task`), split by iterative stratification. An ``.npz`` file
    holds ``x`` and ``y``, and optionally ``x_test`` and ``y_test`` as an explicit test set (read only in
    ``test``; its channels must be the training images').

    Args:
        x: images (Python callers); or ``None`` with ``path``.
        y: class indices, one per image; or a 0/1 label matrix ``[N, L]`` (multi-label: one column per label).
        path: an ``.npz`` file with arrays ``x``, ``y`` (and optionally ``x_test``, ``y_test``).
        test_x: explicit test images (``None``: split a test set off ``x``).
        test_y: explicit test labels.
        class_names: names of the classes (``None``: ``"0"``, ``"1"``, ...).
        layout: ``"auto"``, ``"channels_first"`` (``[N, C, H, W]``) or ``"channels_last"`` (``[N, H, W, C]``) for
            4-D arrays.
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``,
            ``augment``, ``num_workers``, ...), passed on to :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Raises:
        ValueError: for empty arrays, a layout ``"auto"`` cannot tell, NaN or infinite pixels, float images
            outside ``[0, 1]``, labels that are not ``0..K-1``, or test images with other channels.
        TypeError: for images that are neither uint8 nor float, or the former argument ``channels_last``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> dm = ArrayDataModule(rng.random((40, 8, 8)), np.repeat([0, 1], 20), val_fraction=0.25, test_fraction=0.25)
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (2, 1, 8)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set)
        (20, 10)
        >>> ArrayDataModule(rng.random((40, 8, 8, 3)), np.repeat([0, 1], 20)).in_channels  # [N, H, W, C]
        3
    """

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        path: str | None = None,
        test_x: Any = None,
        test_y: Any = None,
        class_names: list[str] | None = None,
        layout: ArrayLayout = "auto",
        **kwargs: Any,
    ) -> None:
        if "channels_last" in kwargs:  # its former name: the model's argument of that name means something else
            value = kwargs.pop("channels_last")
            raise TypeError(
                f"ArrayDataModule takes layout, not channels_last (got channels_last={value!r}): pass"
                f" layout={'channels_last' if value else 'channels_first'!r}, or leave layout='auto' to tell the"
                " layouts apart by the channel count."
            )
        super().__init__(**kwargs)
        check_choice("layout", layout, ARRAY_LAYOUTS)
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
        self.layout = layout
        self._names = None if class_names is None else list(class_names)
        self._x = None if x is None else _as_images(x, "x", layout)
        self._y = None if y is None else _as_labels(y, "y", len(self._x) if self._x is not None else 0, self._names)
        self._test = (test_x, test_y)
        if path is not None:
            with np.load(path) as data:
                self._has_test = test_x is not None or "x_test" in data.files
        else:
            self._has_test = test_x is not None

    def _arrays(self) -> tuple[torch.Tensor, np.ndarray]:
        if self._x is None or self._y is None:
            assert self.path is not None
            with np.load(self.path) as data:
                for key in ("x", "y"):
                    if key not in data.files:
                        raise ValueError(f"Expected {self.path} to hold array {key!r}, but it holds {data.files}.")
                self._x = _as_images(data["x"], f"{self.path}:x", self.layout)
                self._y = _as_labels(data["y"], f"{self.path}:y", len(self._x), self._names)
        return self._x, self._y

    def labels(self) -> np.ndarray:
        return self._arrays()[1]

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            labels = self.labels()
            count = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
            self._names = [str(i) for i in range(count)]
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
        names = ("test_x", "test_y")
        if test_x is None:
            assert self.path is not None
            names = (f"{self.path}:x_test", f"{self.path}:y_test")
            with np.load(self.path) as data:
                if "y_test" not in data.files:
                    raise ValueError(
                        f"Expected {self.path} to hold array 'y_test' beside 'x_test', but it holds {data.files}."
                    )
                test_x, test_y = data["x_test"], data["y_test"]
        x = _as_images(test_x, names[0], self.layout)
        train = self._arrays()[0]
        if x.shape[1] != train.shape[1]:
            raise ValueError(
                f"Expected the test images {names[0]} to have the training images' {train.shape[1]} channels"
                f" ({'x' if self.path is None else f'{self.path}:x'} as [N, C, H, W]: {list(train.shape)}), but"
                f" they have {x.shape[1]} ({list(x.shape)}). Give test images with the same channels."
            )
        labels = _as_labels(test_y, names[1], len(x), self.class_names)
        return ArrayDataset(x, labels)
