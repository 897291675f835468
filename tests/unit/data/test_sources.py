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
    from lightning_cnn.data.readers import load_image

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
    from lightning_cnn.data.readers import load_image

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
        (-0.1, 0.1, r"Expected val_fraction to be in \[0, 1\), but got -0.1"),
        (1.0, 0.1, r"Expected val_fraction to be in \[0, 1\), but got 1.0"),
        (0.2, -0.1, r"Expected test_fraction to be in \[0, 1\), but got -0.1"),
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
    a = ArrayDataModule(x, y, layout="channels_last", test_x=x[:9], test_y=y[:9], val_fraction=0.2)
    b = ArrayDataModule(path=str(path), layout="channels_last", val_fraction=0.2)
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


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    from lightning_cnn.data.readers import load_image

    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    assert Image.open(tmp_path / "ramp.png").mode.startswith("I")  # stored with 16 bits
    for color, channels in (("grayscale", 1), ("rgb", 3)):
        x = load_image(tmp_path / "ramp.png", color=color)
        assert x.shape == (channels, 8, 64) and x.dtype == torch.float32
        torch.testing.assert_close(x[0, 0], torch.from_numpy(ramp[0] / 65535.0).float())
    assert load_image(tmp_path / "ramp.png", color="grayscale", image_size=4).shape == (1, 4, 4)


def test_float_images_outside_0_1_are_refused(tmp_path):
    from lightning_cnn.data.readers import load_image

    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(values).save(tmp_path / "ok.tiff")
    torch.testing.assert_close(load_image(tmp_path / "ok.tiff", color="grayscale")[0], torch.from_numpy(values))
    Image.fromarray(values * 3).save(tmp_path / "bad.tiff")
    with pytest.raises(BadImageError, match=r"bad.tiff: a 32-bit float image must have values in \[0, 1\]"):
        load_image(tmp_path / "bad.tiff")


def test_links_between_sibling_folders_list_each_image_once(tmp_path):
    from lightning_cnn.data.readers import list_image_folder

    root = _write_folder(tmp_path / "root", {"a": 2, "b": 2})
    (root / "a" / "to_b").symlink_to(root / "b", target_is_directory=True)
    (root / "b" / "to_a").symlink_to(root / "a", target_is_directory=True)
    paths, labels, _ = list_image_folder(root)
    assert len({Path(p).resolve() for p in paths}) == len(paths) == 4 and labels.tolist() == [0, 0, 1, 1]


def test_linked_class_subfolders_are_followed_and_loops_are_not(tmp_path):
    from lightning_cnn.data.readers import list_image_folder

    root = _write_folder(tmp_path / "root", {"a": 2, "b": 2})
    _write_folder(tmp_path / "more", {"a": 3})
    (root / "a" / "linked").symlink_to(tmp_path / "more" / "a", target_is_directory=True)
    (root / "b" / "loop").symlink_to(root, target_is_directory=True)
    paths, labels, _ = list_image_folder(root)
    assert labels.tolist() == [0] * 5 + [1] * 2
    assert sum("/a/linked/" in p for p in paths) == 3


def test_extensions_as_one_string_mean_one_ending(tmp_path):
    root = _write_folder(tmp_path, {"a": 2, "b": 2})
    (root / "a" / "notes.json").write_text("{}")  # ends in "n", which a split string would match
    dm = ImageFolderDataModule(root, extensions=".png")
    assert dm.extensions == (".png",) and len(dm.labels()) == 4
    assert ImageFolderDataModule(root, extensions=["png"]).extensions == (".png",)  # the dot is implied
    with pytest.raises(
        ValueError, match=r"Expected extensions to be file endings such as \('.png', '.jpg'\), but got \('',\)"
    ):
        ImageFolderDataModule(root, extensions=[""])


def test_array_labels_beyond_the_class_names_are_refused(tmp_path):
    x, y = np.zeros((30, 1, 4, 4), np.float32), np.repeat([0, 1, 2], 10)
    with pytest.raises(ValueError, match=r"y holds class 2, but class_names has 2 names \(\['a', 'b'\]\)"):
        ArrayDataModule(x, y, class_names=["a", "b"])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dm = ArrayDataModule(path=str(tmp_path / "d.npz"), class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"d.npz:y holds class 2, but class_names has 2 names"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mean": 0.5, "std": 0.25}, TypeError, r"Expected mean to be a non-empty list of numbers .*, but got 0.5."),
        ({"mean": [0.5], "std": [float("nan")]}, ValueError, r"Expected every std value to be a finite number"),
        ({"mean": [0.5, 0.5], "std": [0.2]}, ValueError, r"Expected mean and std of the same length"),
        ({"mean": [0.5], "std": [0.0]}, ValueError, r"Expected every std to be > 0, but got \[0.0\]."),
        ({"batch_size": 2.5}, TypeError, "Expected batch_size to be an int, but got float 2.5."),
    ],
)
def test_bad_statistics_and_counts_are_refused_at_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        DigitsDataModule(**kwargs)


def test_statistics_must_fit_the_channels():
    dm = DigitsDataModule(rgb=True, mean=[0.5, 0.5], std=[0.2, 0.2])
    with pytest.raises(
        ValueError, match=r"Expected mean to have 1 or 3 values \(DigitsDataModule has 3 image channels\)"
    ):
        dm.setup("fit")
    gray = DigitsDataModule(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])  # an RGB statistic: averaged
    gray.setup("fit")
    assert gray.mean == pytest.approx([0.449]) and gray.std == pytest.approx([0.226])
    x, _ = next(iter(gray.train_dataloader()))
    assert gray.on_after_batch_transfer((x, _), 0)[0].shape[1] == 1  # still one channel after normalization


def test_statistics_may_be_numpy_or_tensor_numbers_and_one_channel_takes_1_or_3():
    dm = DigitsDataModule(mean=np.array([0.5], np.float32), std=torch.tensor([0.25]))
    dm.setup("fit")
    assert dm.mean == pytest.approx([0.5]) and dm.std == pytest.approx([0.25])
    dm.use_statistics([np.float64(0.4)], [np.float32(0.2)])
    assert dm.mean == pytest.approx([0.4])
    with pytest.raises(
        ValueError, match=r"Expected mean to have 1 or 3 values \(DigitsDataModule has 1 image channels\)"
    ):
        DigitsDataModule(mean=[0.1, 0.9], std=[1.0, 3.0]).setup("fit")


def test_refused_statistics_change_nothing():
    dm = DigitsDataModule()
    dm.setup("fit")
    before = (dm.mean, dm.std)
    with pytest.raises(ValueError, match="Expected every std to be > 0"):
        dm.use_statistics([0.5], [0.0])
    assert (dm.mean, dm.std) == before


def test_no_test_images_is_an_error_not_an_empty_test():
    dm = DigitsDataModule(test_fraction=0.0)
    dm.setup("fit")  # training and validation need no test images
    with pytest.raises(ValueError, match=r"DigitsDataModule has no test images: test_fraction=0.0 holds none out"):
        dm.setup("test")
