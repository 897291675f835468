"""``lightning-cnn convert``: an image folder, an ``.npz`` file or the bundled digits as a litdata dataset.

The samples are written with ``litdata.optimize`` as chunks, in the source's order, with the class names, image shape
and labels beside them (:func:`~lightning_cnn.data.streaming.read_metadata`), for
:class:`~lightning_cnn.data.streaming.StreamingDataModule`. Everything is written into a temporary folder beside the
output that takes the output's name only when every sample was converted: a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice, check_optional_size, check_positive
from lightning_cnn.data.arrays import ArrayDataModule
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.digits import DigitsDataModule
from lightning_cnn.data.folder import ImageFolderDataModule
from lightning_cnn.data.readers import COLOR_MODES, RESIZE_MODES, ColorMode, ResizeMode
from lightning_cnn.data.streaming import LABELS_FILE, METADATA_FILE, STORED_DTYPES, StoredDtype, import_litdata

__all__ = ["CONVERT_DTYPES", "ConvertDtype", "convert_dataset", "convert_main"]

ConvertDtype = Literal["auto", "uint8", "float32"]
CONVERT_DTYPES: tuple[str, ...] = get_args(ConvertDtype)
_FORMAT = 1


def _source_module(
    source: str, image_size: int | None, color: ColorMode | None, resize_mode: ResizeMode
) -> tuple[ClassifierDataModule, StoredDtype]:
    """The DataModule that reads ``source`` (its checks apply) and the pixel type its images have."""
    if source == "digits":
        return DigitsDataModule(image_size=image_size, rgb=color == "rgb"), "float32"
    path = Path(source)
    if path.is_dir():
        module = ImageFolderDataModule(str(path), image_size=image_size, color=color or "rgb", resize_mode=resize_mode)
        return module, "uint8"
    if path.is_file() and path.suffix == ".npz":
        if image_size is not None or color is not None:
            raise ValueError(
                f"Expected no image_size or color with an .npz source ({source!r}), but got image_size={image_size!r},"
                f" color={color!r}: its arrays are stored as they are. Resize them before, or convert an image folder."
            )
        with np.load(path) as arrays:
            kind: StoredDtype = "uint8" if "x" in arrays.files and arrays["x"].dtype == np.uint8 else "float32"
        return ArrayDataModule(path=str(path)), kind
    if path.exists():
        raise ValueError(
            f"Expected source to be 'digits', a folder of class subfolders or an .npz file, but {source!r} is a file"
            f" ending in {path.suffix or '(nothing)'!r}."
        )
    raise FileNotFoundError(
        f"Expected source to be 'digits', a folder of class subfolders or an .npz file, but {source!r} does not exist."
    )


class _Sample:
    """The ``litdata.optimize`` function: sample ``i`` as a dict; a failure is written down, not raised.

    A worker that raises would leave ``optimize`` waiting; the error goes into ``errors`` (one file per sample) and
    the sample is written as zeros, so the run ends and :func:`convert_dataset` refuses the result.
    """

    def __init__(self, dataset: Dataset, labels: np.ndarray, dtype: str, shape: tuple[int, ...], errors: str) -> None:
        self.dataset, self.labels, self.dtype, self.shape, self.errors = dataset, labels, dtype, shape, errors

    def name(self, index: int) -> str:
        paths = getattr(self.dataset, "paths", None)
        return f"sample {index}" + (f" ({paths[index]})" if paths is not None else "")

    def image(self, index: int) -> np.ndarray:
        x = self.dataset[index][0]
        if tuple(x.shape) != self.shape:
            raise ValueError(
                f"its image is {list(x.shape)} ([C, H, W]), but the first is {list(self.shape)}: pass image_size to"
                " resize every image to one size"
            )
        if self.dtype == "float32":
            return x.numpy().astype(np.float32)
        scaled = torch.round(x * 255.0)
        if not torch.equal(scaled / 255.0, x):
            raise ValueError(
                "its pixels are not 8-bit (a 16-bit or float image, or a resize of them): convert with"
                " dtype='float32' (--dtype float32) to keep them"
            )
        return scaled.to(torch.uint8).numpy()

    def __call__(self, index: int) -> dict[str, Any]:
        try:
            image = self.image(index)
        except Exception as err:  # reported by convert_dataset, naming the sample
            Path(self.errors, f"{index}.txt").write_text(f"{self.name(index)}: {err}", encoding="utf-8")
            image = np.zeros(self.shape, dtype=self.dtype)
        return {"index": index, "image": image, "label": int(self.labels[index])}


def _check_output(output: Path, overwrite: bool) -> None:
    if output.is_file():
        raise FileExistsError(f"Expected output to be a folder to write, but {str(output)!r} is a file.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(
            f"Expected output to be a new or empty folder, but {str(output)!r} holds files: give another folder,"
            " or overwrite=True (--overwrite true) to replace it once the conversion succeeds."
        )


def _check_order(folder: Path, count: int) -> None:
    """Check that the stored samples are in the source's order (the first sample of every chunk), as labels assume."""
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    dataset = import_litdata().StreamingDataset(str(folder))
    if len(dataset) != count:
        raise RuntimeError(f"litdata wrote {len(dataset)} samples into {folder}, but the source has {count}.")
    start = 0
    for chunk in index["chunks"]:
        if chunk["chunk_size"] and int(dataset[start]["index"]) != start:
            raise RuntimeError(f"litdata stored sample {dataset[start]['index']} at {start} in {folder}: out of order.")
        start += chunk["chunk_size"]


def convert_dataset(
    source: str,
    output: str,
    *,
    image_size: int | None = None,
    color: ColorMode | None = None,
    resize_mode: ResizeMode = "stretch",
    dtype: ConvertDtype = "auto",
    num_workers: int | None = None,
    chunk_bytes: str = "64MB",
    overwrite: bool = False,
) -> Path:
    """Write ``source`` as an optimized litdata dataset into the folder ``output``, for ``StreamingDataModule``.

    ``source`` is ``"digits"`` (the bundled digits), a folder of class subfolders (read as
    :class:`~lightning_cnn.data.folder.ImageFolderDataModule` reads it: ``image_size``, ``color``, ``resize_mode``)
    or an ``.npz`` file with ``x`` and ``y`` (as :class:`~lightning_cnn.data.arrays.ArrayDataModule` takes; its
    ``x_test`` is not converted). Each sample is the decoded image ``[C, H, W]`` and its label; ``dtype="uint8"``
    stores 8-bit pixels (what image files and uint8 arrays hold; refused for pixels it would change), ``"float32"``
    the float pixels, ``"auto"`` the one that keeps the source's values. Beside the chunks: ``lightning_cnn.json``
    (class names, image shape, pixel type, count) and ``labels.npy``.

    Args:
        source: ``"digits"``, an image folder or an ``.npz`` file.
        output: the folder to write (new, or empty, or replaced with ``overwrite``).
        image_size: resize images to this square size (digits and folders).
        color: ``"rgb"`` or ``"grayscale"`` (folders: ``"rgb"`` when ``None``; digits: grayscale when ``None``).
        resize_mode: ``"stretch"`` or ``"center_crop"`` (folders).
        dtype: ``"auto"``, ``"uint8"`` or ``"float32"``.
        num_workers: processes that decode and write (``None``: up to 4, as the CPUs allow).
        chunk_bytes: the size of litdata's chunk files.
        overwrite: replace a non-empty ``output`` (only once the conversion succeeded).

    Returns:
        The written folder.

    Raises:
        FileNotFoundError: when ``source`` does not exist.
        FileExistsError: when ``output`` is a file, or holds files without ``overwrite``.
        ValueError: for arguments outside their choices, or a sample that cannot be converted (naming it and why;
            nothing is written).
        ModuleNotFoundError: when litdata is not installed.
    """
    check_choice("dtype", dtype, CONVERT_DTYPES)
    check_choice("resize_mode", resize_mode, RESIZE_MODES)
    if color is not None:
        check_choice("color", color, COLOR_MODES)
    check_optional_size("image_size", image_size)
    if num_workers is not None:
        check_positive("num_workers", num_workers, integer=True)
    litdata = import_litdata("lightning-cnn convert")
    target = Path(output)
    _check_output(target, overwrite)
    module, natural = _source_module(str(source), image_size, color, resize_mode)
    labels = module.labels()
    dataset = module.make_dataset(np.arange(len(labels)), train=False)
    stored = natural if dtype == "auto" else dtype
    assert stored in STORED_DTYPES
    shape = tuple(dataset[0][0].shape)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    errors = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".errors", dir=target.parent)
    workers = num_workers or max(1, min(4, os.cpu_count() or 1))
    try:
        litdata.optimize(
            _Sample(dataset, labels, stored, shape, errors),  # type: ignore[arg-type]
            list(range(len(labels))),
            str(temporary),
            num_workers=workers,
            chunk_bytes=chunk_bytes,
            keep_data_ordered=True,
            reorder_files=False,
            verbose=False,
            start_method="fork" if "fork" in multiprocessing.get_all_start_methods() else None,
        )
        failed = sorted(Path(errors).iterdir(), key=lambda p: int(p.stem))
        if failed:
            raise ValueError(
                f"Cannot convert {source}: {len(failed)} of {len(labels)} samples failed, nothing was written."
                f" The first, {failed[0].read_text(encoding='utf-8')}."
            )
        _check_order(temporary, len(labels))
        metadata = {
            "format": _FORMAT,
            "class_names": list(module.class_names),
            "image_shape": list(shape),
            "dtype": stored,
            "num_samples": len(labels),
            "source": str(source),
        }
        (temporary / METADATA_FILE).write_text(json.dumps(metadata, indent=1), encoding="utf-8")
        np.save(temporary / LABELS_FILE, labels.astype(np.int64), allow_pickle=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(errors, ignore_errors=True)
    return target


def convert_main(argv: list[str]) -> Path:
    """``lightning-cnn convert``: :func:`convert_dataset` on the command line.

    Returns:
        The written folder.
    """
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(
        prog="lightning-cnn convert",
        description="Write an image folder, an .npz file (x, y) or the bundled digits as an optimized litdata dataset"
        " for StreamingDataModule (--data StreamingDataModule --data.root OUTPUT). Needs litdata:"
        " pip install 'lightning-cnn[streaming]'.",
    )
    parser.add_argument("--source", type=str, required=True, help="'digits', an image folder or an .npz file.")
    parser.add_argument("--output", type=str, required=True, help="The folder to write.")
    parser.add_argument("--image_size", type=int | None, default=None, help="Resize to this square size.")
    parser.add_argument("--color", type=ColorMode | None, default=None, help="rgb or grayscale (folders: rgb).")
    parser.add_argument("--resize_mode", type=ResizeMode, default="stretch", help="stretch or center_crop.")
    parser.add_argument("--dtype", type=ConvertDtype, default="auto", help="auto, uint8 or float32 pixels.")
    parser.add_argument("--num_workers", type=int | None, default=None, help="Processes that write (default: <= 4).")
    parser.add_argument("--chunk_bytes", type=str, default="64MB", help="The size of the chunk files.")
    parser.add_argument("--overwrite", type=bool, default=False, help="Replace a non-empty output folder.")
    config = parser.parse_args(argv)
    options = {k: config[k] for k in ("image_size", "color", "resize_mode", "dtype", "num_workers", "chunk_bytes")}
    path = convert_dataset(config.source, config.output, overwrite=config.overwrite, **options)
    print(f"Converted {config.source}: {path} (lightning-cnn fit --data StreamingDataModule --data.root {path})")
    return path
