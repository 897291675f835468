"""lightning-cnn convert and StreamingDataModule: what is stored, how it splits, the two training orders."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import ArrayDataModule, DigitsDataModule, ImageFolderDataModule, StreamingDataModule
from lightning_cnn.cli import main
from lightning_cnn.convert import convert_dataset
from lightning_cnn.data.digits import load_digit_arrays
from lightning_cnn.data.streaming import LABELS_FILE, METADATA_FILE, import_litdata, read_metadata
from tests.helpers.streaming import indexed_npz, sample_ids


def _images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    return str(convert_dataset("digits", str(tmp_path_factory.mktemp("stream") / "digits"), num_workers=2))


def test_digits_are_stored_with_their_labels_and_description(digits_root):
    metadata = read_metadata(digits_root)
    images, labels = load_digit_arrays()
    assert metadata["class_names"] == [str(i) for i in range(10)]
    assert metadata["image_shape"] == [1, 8, 8] and metadata["dtype"] == "float32"
    assert metadata["num_samples"] == 1797
    np.testing.assert_array_equal(metadata["labels"], labels)
    dm = StreamingDataModule(digits_root)
    x, y = dm.make_dataset(np.array([0, 1000, 1796]), train=False)[1]
    assert y == labels[1000] and torch.equal(x, torch.from_numpy(images[1000] / 16.0).float()[None])


@pytest.mark.parametrize("options", [{}, {"num_folds": 4, "fold": 2}, {"split_seed": 3, "val_fraction": 0.2}])
def test_split_statistics_and_images_equal_the_digits_source(digits_root, options):
    stream, ref = StreamingDataModule(digits_root, **options), DigitsDataModule(**options)
    stream.setup("fit"), ref.setup("fit")
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(stream.split[name], ref.split[name])
    assert stream.mean == ref.mean and stream.std == ref.std
    assert torch.equal(_images(stream.val_set), _images(ref.val_set))
    assert (stream.num_classes, stream.in_channels, stream.image_size) == (10, 1, 8)


def test_an_image_folder_is_stored_as_the_folder_source_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    out = convert_dataset(str(tmp_path / "imgs"), str(tmp_path / "out"), image_size=8, num_workers=1)
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["dtype"] == "uint8" and metadata["image_shape"] == [3, 8, 8]
    assert metadata["class_names"] == ["cat", "dog"]
    folder = ImageFolderDataModule(str(tmp_path / "imgs"), image_size=8)
    every = np.arange(12)
    assert torch.equal(
        _images(StreamingDataModule(str(out)).make_dataset(every, False)), _images(folder.make_dataset(every, False))
    )
    np.testing.assert_array_equal(np.load(out / LABELS_FILE), folder.labels())


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_arrays_keep_their_pixels(tmp_path, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (30, 3, 5, 5), dtype=np.uint8) if dtype == np.uint8 else rng.random((30, 3, 5, 5))
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(30) % 3)
    out = convert_dataset(str(tmp_path / "a.npz"), str(tmp_path / "out"), num_workers=2, chunk_bytes="2kB")
    assert read_metadata(out)["dtype"] == ("uint8" if dtype == np.uint8 else "float32")
    every = np.arange(30)
    ref = ArrayDataModule(path=str(tmp_path / "a.npz")).make_dataset(every, False)
    assert torch.equal(_images(StreamingDataModule(str(out)).make_dataset(every, False)), _images(ref))


def test_many_chunks_keep_the_source_order(tmp_path):
    path = indexed_npz(tmp_path / "i.npz", count=600)
    out = convert_dataset(path, str(tmp_path / "out"), num_workers=2, chunk_bytes="1kB")
    assert len(json.loads((out / "index.json").read_text())["chunks"]) > 4
    dm = StreamingDataModule(str(out), normalize="none")
    assert sample_ids(_images(dm.make_dataset(np.arange(600), False))) == list(range(600))


def test_streaming_order_draws_each_training_sample_once_seeded(tmp_path):
    out = convert_dataset(indexed_npz(tmp_path / "i.npz"), str(tmp_path / "out"), num_workers=1, chunk_bytes="1kB")

    def epoch(seed: int) -> list[int]:
        dm = StreamingDataModule(str(out), order="streaming", normalize="none", batch_size=16, split_seed=seed)
        dm.setup("fit")
        ids = [i for x, _ in dm.train_dataloader() for i in sample_ids(x)]
        assert sorted(ids) == sorted(dm.split["train"].tolist())
        return ids

    first = epoch(0)
    assert first == epoch(0)
    assert first != sorted(first)  # litdata shuffled them


def test_seeded_order_is_the_base_sampler(tmp_path):
    path = indexed_npz(tmp_path / "i.npz")
    out = convert_dataset(path, str(tmp_path / "out"), num_workers=1)
    stream = StreamingDataModule(str(out), normalize="none", batch_size=16)
    ref = ArrayDataModule(path=path, normalize="none", batch_size=16)
    stream.setup("fit"), ref.setup("fit")
    assert [sample_ids(x) for x, _ in stream.train_dataloader()] == [sample_ids(x) for x, _ in ref.train_dataloader()]


def test_convert_on_the_command_line_and_in_the_help(tmp_path, capsys):
    main(["convert", "--source", "digits", "--output", str(tmp_path / "d"), "--image_size", "16", "--num_workers", "1"])
    assert read_metadata(tmp_path / "d")["image_shape"] == [1, 16, 16]
    assert "--data StreamingDataModule --data.root" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "lightning-cnn convert --help" in capsys.readouterr().out


def test_without_litdata_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "litdata", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'lightning-cnn\[streaming\]'"):
        import_litdata()
