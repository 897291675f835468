"""Every data source through ``lightning-cnn fit`` with the default logger (CSV under runs/): no hparams clash."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from lightning_cnn.cli import CNNCli
from tests.helpers.files import read_csv_rows

QUICK = [
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    "--model.channels", "[4]", "--model.hidden", "[]",
]  # fmt: skip


def _digits(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.images[:n] * (255 / 16)).astype(np.uint8), digits.target[:n]


def _image_folder(root: Path) -> list[str]:
    x, y = _digits()
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        (root / f"d{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(root / f"d{label}" / f"{i:04d}.png")
    return ["--data", "ImageFolderDataModule", "--data.root", str(root), "--data.color", "grayscale"]


def _arrays(root: Path) -> list[str]:
    x, y = _digits()
    root.mkdir(parents=True)
    np.savez(root / "digits.npz", x=x, y=y)
    return ["--data", "ArrayDataModule", "--data.path", str(root / "digits.npz")]


def _write_idx(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _torchvision(root: Path) -> list[str]:
    """A tiny MNIST in torchvision's file layout, written from digits (no download)."""
    x, y = _digits()
    images = np.pad(np.kron(x, np.ones((3, 3), dtype=np.uint8)), ((0, 0), (2, 2), (2, 2)))  # 28x28
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", images[:150])
    _write_idx(raw / "train-labels-idx1-ubyte", y[:150])
    _write_idx(raw / "t10k-images-idx3-ubyte", images[150:])
    _write_idx(raw / "t10k-labels-idx1-ubyte", y[150:])
    return ["--data", "TorchvisionDataModule", "--data.name", "MNIST", "--data.root", str(root)]


@pytest.mark.parametrize(
    "source", [None, _image_folder, _arrays, _torchvision], ids=["digits", "folder", "arrays", "torchvision"]
)
def test_every_source_fits_from_the_command_line_with_the_default_logger(in_tmp, source):
    data = [] if source is None else source(in_tmp / "data")
    CNNCli(args=["fit", *data, *QUICK])
    run = in_tmp / "runs" / "lightning_cnn" / "version_0"
    assert (run / "hparams.yaml").is_file() and (run / "config.yaml").is_file()
    rows = read_csv_rows(run / "metrics.csv")
    assert any(row.get("val/loss") for row in rows)  # the logger recorded the epoch
