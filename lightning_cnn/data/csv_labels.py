"""Image files with their labels listed in a CSV file (``file,label1;label2``): a multi-label DataModule."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice, check_optional_size
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import FileDataset
from lightning_cnn.data.readers import COLOR_MODES, RESIZE_MODES, ColorMode, ResizeMode

__all__ = ["CSVImageDataModule", "read_label_csv"]


def read_label_csv(
    path: str | Path, root: str | Path | None = None, separator: str = ";"
) -> tuple[list[str], list[list[str]]]:
    r"""The image files of a label CSV and each one's labels: ``(paths, labels)``, in the file's order.

    Each row is ``file,labels``: an image file (relative to ``root``, default the CSV's folder, or absolute)
    and its labels joined by ``separator`` (``cat;outdoor``). A first row ``file,labels`` is a header and is
    skipped. Every file must exist (checked here, none is opened) and every row must name at least one label.

    Raises:
        FileNotFoundError: when the CSV or an image file it names does not exist (naming the line and the file).
        ValueError: for a row without two columns, an empty label list or an empty label (``a;;b``), or no rows.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "a.png").touch()
        >>> _ = (folder / "labels.csv").write_text("file,labels\na.png,odd;prime\n")
        >>> paths, labels = read_label_csv(folder / "labels.csv")
        >>> [pathlib.Path(p).name for p in paths], labels
        (['a.png'], [['odd', 'prime']])
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"Expected csv to be a CSV file of images and labels, but {str(path)!r} does not exist."
        )
    base = Path(root) if root is not None else csv_path.parent
    paths: list[str] = []
    labels: list[list[str]] = []
    with csv_path.open(newline="") as file:
        for line, row in enumerate(csv.reader(file), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if line == 1 and [c.strip().lower() for c in row] == ["file", "labels"]:
                continue
            where = f"{csv_path}, line {line}"
            if len(row) != 2:
                raise ValueError(
                    f"Expected each row of {csv_path} to be file,labels (labels joined by {separator!r}), but {where}"
                    f" has {len(row)} columns: {row!r}."
                )
            name, field = row[0].strip(), row[1].strip()
            tokens = [t.strip() for t in field.split(separator)]
            if not field or any(not t for t in tokens):
                raise ValueError(
                    f"Expected every image in {csv_path} to have labels joined by {separator!r} with no empty label,"
                    f" but {where} gives {name!r} the labels {field!r}. Name at least one label per image and no"
                    " empty one between separators."
                )
            image = Path(name) if Path(name).is_absolute() else base / name
            if not image.is_file():
                raise FileNotFoundError(
                    f"{where} names the image {name!r}, but {str(image)!r} does not exist. Fix the row, or pass root="
                    " (the folder the CSV's file names are relative to; default: the CSV's folder)."
                )
            paths.append(str(image))
            labels.append(sorted(set(tokens)))
    if not paths:
        raise ValueError(f"Expected {csv_path} to list at least one image (rows file,labels), but it lists none.")
    return paths, labels


class CSVImageDataModule(ClassifierDataModule):
    """Image files and their labels from a CSV file of rows ``file,label1;label2``: a multi-label task.

    Each image may carry several labels; the labels are the classes, sorted by name (or ``class_names``), and
    :meth:`labels` is the 0/1 matrix ``[N, L]`` (a row per image, a column per label). The split is an iterative
    stratification of it (:mod:`~lightning_cnn.data.multilabel_splits`), and a model trained on it is
    multi-label (sigmoid loss, multi-label metrics, per-label probabilities). Reading the CSV checks that every
    file exists, without opening any; images are decoded in the loader workers.

    Args:
        csv: the CSV file (see :func:`read_label_csv`).
        root: the folder the CSV's file names are relative to (``None``: the CSV's folder).
        test_csv: a CSV of test images (``None``: split a test set off ``csv``); its labels must be ``csv``'s.
        separator: what joins an image's labels.
        class_names: the labels in column order (``None``: every label of ``csv``, sorted).
        image_size: resize every image to this square size (``None``: keep sizes; they must then agree).
        resize_mode: ``"stretch"`` or ``"center_crop"``.
        color: ``"rgb"`` or ``"grayscale"``.
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``, ...).

    Raises:
        FileNotFoundError: for a missing CSV or image file (at first use).
        ValueError: for a bad row, an empty label, a label not in ``class_names`` or not in ``csv`` (a test CSV's).
    """

    def __init__(
        self,
        csv: str,
        root: str | None = None,
        test_csv: str | None = None,
        separator: str = ";",
        class_names: list[str] | None = None,
        image_size: int | None = None,
        resize_mode: ResizeMode = "stretch",
        color: ColorMode = "rgb",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_optional_size("image_size", image_size)
        check_choice("resize_mode", resize_mode, RESIZE_MODES)
        check_choice("color", color, COLOR_MODES)
        if not isinstance(separator, str) or not separator or separator == ",":
            raise ValueError(f"Expected separator to be a string other than ',' (the column's), but got {separator!r}.")
        self.save_hyperparameters()
        self.csv, self.root, self.test_csv, self.separator = str(csv), root, test_csv, separator
        self._given_names = None if class_names is None else [str(n) for n in class_names]
        self._image_size = image_size
        self.color = color
        self._options: dict[str, Any] = {"color": color, "image_size": image_size, "resize_mode": resize_mode}
        self._listing: tuple[list[str], np.ndarray, list[str]] | None = None

    def _matrix(self, source: str, labels: list[list[str]], names: list[str]) -> np.ndarray:
        column = {n: j for j, n in enumerate(names)}
        matrix = np.zeros((len(labels), len(names)), dtype=np.int64)
        for i, row in enumerate(labels):
            unknown = [t for t in row if t not in column]
            if unknown:
                raise ValueError(
                    f"{source} gives image {i} the label {unknown[0]!r}, which is not one of the labels {names}."
                    " Fix the row, or list every label in class_names."
                )
            matrix[i, [column[t] for t in row]] = 1
        return matrix

    def _list(self) -> tuple[list[str], np.ndarray, list[str]]:
        if self._listing is None:
            paths, labels = read_label_csv(self.csv, self.root, self.separator)
            names = self._given_names or sorted({t for row in labels for t in row})
            self._listing = paths, self._matrix(self.csv, labels, names), names
        return self._listing

    def labels(self) -> np.ndarray:
        return self._list()[1]

    @property
    def class_names(self) -> list[str]:
        return list(self._list()[2])

    @property
    def in_channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def image_size(self) -> int | None:
        return self._image_size

    @property
    def has_test_source(self) -> bool:
        return self.test_csv is not None

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        paths, labels, _ = self._list()
        return FileDataset([paths[i] for i in indices], labels[indices], self._options)

    def make_test_dataset(self) -> Dataset:
        assert self.test_csv is not None
        paths, labels = read_label_csv(self.test_csv, self.root, self.separator)
        return FileDataset(paths, self._matrix(self.test_csv, labels, self.class_names), self._options)
