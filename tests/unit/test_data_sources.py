"""Sources: image folders (bad data), arrays, torchvision by name, argument checks and their messages."""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import (
    ArrayDataModule,
    BadImageError,
    ClassifierDataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    TorchvisionDataModule,
)


def _write_folder(root: Path, counts: dict[str, int], size: int = 8, mode: str = "L") -> Path:
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{i:03d}.png")
    return root


def test_folder_lists_classes_and_decodes_images(tmp_path):
    root = _write_folder(tmp_path / "data", {"cat": 10, "dog": 12}, size=10, mode="RGB")
    dm = ImageFolderDataModule(str(root), image_size=6, color="grayscale", val_fraction=0.2, test_fraction=0.2)
    assert dm.class_names == ["cat", "dog"] and dm.num_classes == 2 and dm.in_channels == 1
    assert dm.labels().tolist() == [0] * 10 + [1] * 12
    dm.setup("fit")
    x, y = dm.train_set[0]
    assert x.shape == (1, 6, 6) and 0 <= x.min() and x.max() <= 1 and y in (0, 1)
    assert dm.class_weights == pytest.approx([14 / (2 * 6), 14 / (2 * 8)])


def test_listing_opens_no_image(tmp_path, monkeypatch):
    root = _write_folder(tmp_path / "data", {"a": 5, "b": 5})

    def refuse(*args, **kwargs):
        raise AssertionError("an image was opened while listing")

    monkeypatch.setattr(Image, "open", refuse)
    dm = ImageFolderDataModule(str(root), val_fraction=0.2, test_fraction=0.2)
    assert len(dm.labels()) == 10 and len(dm.split["train"]) == 6


def test_center_crop_keeps_the_middle(tmp_path):
    img = np.zeros((4, 8), dtype=np.uint8)
    img[:, 2:6] = 255
    (tmp_path / "a").mkdir()
    Image.fromarray(img, "L").save(tmp_path / "a" / "x.png")
    from lightning_cnn.data.sources import load_image

    x = load_image(tmp_path / "a" / "x.png", color="grayscale", image_size=4, resize_mode="center_crop")
    assert x.shape == (1, 4, 4) and x.min() > 0.9


def test_corrupt_image_fails_with_its_path(tmp_path):
    root = _write_folder(tmp_path / "data", {"a": 6, "b": 6})
    bad = root / "a" / "002.png"
    bad.write_bytes(b"not a png at all")
    dm = ImageFolderDataModule(str(root), val_fraction=0.2, test_fraction=0.2, normalize="none")
    dm.setup("fit")
    dm.setup("test")
    with pytest.raises(BadImageError, match=rf"Cannot read image {bad}: .*skip_bad_files=True"):
        for ds in (dm.train_set, dm.val_set, dm.test_set):
            for i in range(len(ds)):
                ds[i]


def test_truncated_image_fails_with_its_path(tmp_path):
    root = _write_folder(tmp_path / "data", {"a": 6, "b": 6}, size=32)
    bad = root / "b" / "000.png"
    bad.write_bytes(bad.read_bytes()[:60])
    from lightning_cnn.data.sources import load_image

    with pytest.raises(BadImageError, match=rf"Cannot read image {bad}"):
        load_image(bad)


def test_skip_bad_files_skips_and_counts_in_a_warning(tmp_path):
    root = _write_folder(tmp_path / "data", {"a": 10, "b": 10})
    for name in ("a/001.png", "a/004.png", "b/007.png"):
        (root / name).write_bytes(b"broken")
    dm = ImageFolderDataModule(str(root), val_fraction=0.2, test_fraction=0.2, skip_bad_files=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("test")
    messages = [str(w.message) for w in caught if "could not be read" in str(w.message)]
    total = sum(int(m.split()[1]) for m in messages)
    assert total == 3, messages
    assert all(str(root) in m for m in messages)
    n = len(dm.train_set) + len(dm.val_set) + len(dm.test_set)
    assert n == 17
    for ds in (dm.train_set, dm.val_set, dm.test_set):
        for i in range(len(ds)):
            ds[i]


@pytest.mark.parametrize(
    ("counts", "error", "message"),
    [
        ({"a": 5, "b": 0}, ValueError, r"Class folder .*/b has no images \(files ending in .*\.png"),
        ({"only": 5}, ValueError, r"has only one class folder \('only'\): a classifier needs at least 2 classes"),
        ({}, ValueError, r"has no class subfolders: expected one folder of images per class"),
        ({"a": 20, "b": 2}, ValueError, r"Class 'b' has 2 samples: too few to give train, val"),
    ],
)
def test_bad_folders_are_refused(tmp_path, counts, error, message):
    root = _write_folder(tmp_path / "data", counts)
    root.mkdir(exist_ok=True)
    with pytest.raises(error, match=message):
        ImageFolderDataModule(str(root)).setup("fit")


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"Image folder {tmp_path / 'nope'} does not exist"):
        ImageFolderDataModule(str(tmp_path / "nope")).labels()


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [
        (0.0, 0.1, r"Expected val_fraction to be in \(0, 1\), but got 0.0"),
        (1.0, 0.1, r"Expected val_fraction to be in \(0, 1\), but got 1.0"),
        (0.2, -0.1, r"Expected test_fraction to be in \(0, 1\), but got -0.1"),
        (0.6, 0.4, r"Expected val_fraction \+ test_fraction to be < 1 .*0.6 \+ 0.4 = 1"),
    ],
)
def test_bad_fractions_are_refused(val, test, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(val_fraction=val, test_fraction=test).setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"augment_on": "gpu"}, r"Expected augment_on to be one of \('cpu', 'device', 'auto'\), but got 'gpu'"),
        ({"normalize": "datset"}, r"Expected normalize to be one of .*Did you mean 'dataset'"),
        ({"augment": "hevy"}, r"Expected augment to be a preset in"),
        ({"image_size": 0}, r"Expected image_size to be an int >= 1 or None, but got 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)


def test_folder_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"Expected color to be one of \('rgb', 'grayscale'\), but got 'gray'"):
        ImageFolderDataModule(str(tmp_path), color="gray")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected resize_mode to be one of \('stretch', 'center_crop'\)"):
        ImageFolderDataModule(str(tmp_path), resize_mode="crop")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ arrays
def test_arrays_and_npz_give_the_same_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 6, 6, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 20)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, x_test=x[:9], y_test=y[:9])
    a = ArrayDataModule(x, y, channels_last=True, test_x=x[:9], test_y=y[:9], val_fraction=0.2)
    b = ArrayDataModule(path=str(path), channels_last=True, val_fraction=0.2)
    for dm in (a, b):
        assert (dm.num_classes, dm.in_channels, dm.image_size) == (3, 3, 6)
        assert dm.has_test_source and len(dm.split["test"]) == 0
        dm.setup("fit")
        dm.setup("test")
        assert len(dm.test_set) == 9
    xa, ya = a.train_set[0]
    xb, yb = b.train_set[0]
    assert torch.equal(xa, xb) and ya == yb and xa.shape == (3, 6, 6) and xa.max() <= 1
    assert "x" not in a.hparams and "test_x" not in a.hparams


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"Expected either x and y \(arrays\) or path"),
        ({"x": np.zeros((4, 2, 2))}, r"Expected y \(labels\) with x"),
        ({"x": np.zeros((4, 2, 2)), "y": [0, 1, 0]}, r"one label per image \(4\), but got 3"),
        ({"x": np.zeros((4, 2)), "y": [0, 1, 0, 1]}, r"Expected x to have shape \[N, H, W\]"),
        ({"x": np.zeros((4, 2, 2)), "y": [0.0, 1.0, 0.0, 1.0]}, r"Expected y to be a 1-D array of class indices"),
        ({"path": "missing.npz"}, r"Expected path to be an .npz file, but 'missing.npz' does not exist"),
    ],
)
def test_bad_arrays_are_refused(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        ArrayDataModule(**kwargs)


# ------------------------------------------------------------------------------------------------ torchvision
@pytest.mark.parametrize(
    ("name", "folder"),
    [("MNIST", "MNIST/raw"), ("FashionMNIST", "FashionMNIST/raw"), ("CIFAR10", "cifar-10-batches-py"), ("SVHN", "")],
)
def test_torchvision_without_files_names_the_folder(tmp_path, name, folder):
    dm = TorchvisionDataModule(name, root=str(tmp_path / "data"))
    expected = str((tmp_path / "data" / folder).resolve()) if folder else str((tmp_path / "data").resolve())
    with pytest.raises(FileNotFoundError, match=rf"{name} training files not found in {expected} .*download=True"):
        dm.setup("fit")


def test_torchvision_bad_name_is_refused():
    with pytest.raises(
        ValueError,
        match=r"Expected name to be one of \('MNIST', 'FashionMNIST', 'CIFAR10', 'CIFAR100', 'SVHN'\), but got 'CIF",
    ):
        TorchvisionDataModule("CIFAR1O")  # type: ignore[arg-type]


def _write_idx(path: Path, array: np.ndarray) -> None:
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb") as f:
        f.write(b"\x00\x00\x08" + bytes([array.ndim]) + dims + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_reads_files_in_torchvision_layout(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images * 15, np.ones((3, 3)))[:, :, :]  # 24x24, stands in for 28x28
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", images[:1500])
    _write_idx(raw / "train-labels-idx1-ubyte", digits.target[:1500])
    _write_idx(raw / "t10k-images-idx3-ubyte", images[1500:])
    _write_idx(raw / "t10k-labels-idx1-ubyte", digits.target[1500:])
    dm = TorchvisionDataModule("MNIST", root=str(tmp_path), val_fraction=0.2)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 1500
    x, label = dm.train_set[0]
    assert label == digits.target[dm.split["train"][0]]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert dm.class_names[0].startswith("0")
    dm.setup("test")
    assert len(dm.test_set) == 297


def test_base_class_says_what_to_implement():
    with pytest.raises(NotImplementedError):
        ClassifierDataModule().labels()
