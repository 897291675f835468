"""DataModules with real Trainers: the test source stays closed during fit, splits persist, folders train."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import AugmentationPreview, DigitsDataModule, ImageFolderDataModule, SimpleCNN


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """scikit-learn's 1,797 digits as 8x8 grayscale PNGs in a class-folder tree, file names in dataset order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits_png")
    for c in range(10):
        (root / str(c)).mkdir()
    # Values 0-16 times 15 fit uint8 exactly; "dataset" normalization removes the scale.
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        Image.fromarray((image * 15).astype(np.uint8), "L").save(root / str(label) / f"{i:04d}.png")
    return root


def _fit_and_test(model, dm, fast_trainer, epochs: int, folder: str = "run") -> float:
    trainer = pl.Trainer(
        max_epochs=epochs, **dict(fast_trainer, default_root_dir=fast_trainer["default_root_dir"] / folder)
    )
    trainer.fit(model, dm)
    return trainer.test(model, dm, verbose=False)[0]["test/acc"]


def test_folder_trains_to_the_accuracy_of_digits(digits_folder, fast_trainer):
    torch.set_num_threads(1)
    pl.seed_everything(0)
    folder_dm = ImageFolderDataModule(str(digits_folder), color="grayscale", split_seed=3)
    folder_acc = _fit_and_test(SimpleCNN(channels=(16, 32)), folder_dm, fast_trainer, 8, "folder")
    pl.seed_everything(0)
    digits_dm = DigitsDataModule(split_seed=3)
    digits_acc = _fit_and_test(SimpleCNN(channels=(16, 32)), digits_dm, fast_trainer, 8, "digits")
    print(f"test accuracy: image folder {folder_acc:.4f}, DigitsDataModule {digits_acc:.4f}")
    # The same seed and fractions split the same images: compare the test images themselves.
    folder_test = torch.stack([folder_dm.test_set[i][0] for i in range(len(folder_dm.test_set))])
    digits_test = digits_dm.test_set.tensors[0]
    order = np.argsort([int(Path(p).stem) for p in folder_dm.test_set.paths])
    torch.testing.assert_close(folder_test[order] * 255 / 15 / 16, digits_test, atol=1e-6, rtol=0)
    assert abs(folder_acc - digits_acc) <= 0.01
    assert folder_acc >= 0.95


class _Recorder:
    """Records every path opened as an image or listed as a folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_open, real_scandir, real_walk = Image.open, os.scandir, os.walk

        def image_open(fp, *args, **kwargs):
            self.paths.append(str(fp))
            return real_open(fp, *args, **kwargs)

        def scandir(path="."):
            self.paths.append(str(path))
            return real_scandir(path)

        def walk(top, *args, **kwargs):
            self.paths.append(str(top))
            return real_walk(top, *args, **kwargs)

        monkeypatch.setattr(Image, "open", image_open)
        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(os, "walk", walk)

    def under(self, root: Path) -> list[str]:
        return [p for p in self.paths if p.startswith(str(root))]


def _write(root: Path, rng: np.random.Generator, n: int) -> None:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(root / c / f"{i}.png")


def test_fit_never_opens_the_test_source(tmp_path, fast_trainer, monkeypatch):
    rng = np.random.default_rng(0)
    train_root, test_root = tmp_path / "train", tmp_path / "test"
    _write(train_root, rng, 20)
    _write(test_root, rng, 5)
    recorder = _Recorder(monkeypatch)
    dm = ImageFolderDataModule(str(train_root), test_root=str(test_root), color="grayscale", batch_size=8)
    model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
    trainer = pl.Trainer(max_epochs=1, **fast_trainer)
    trainer.fit(model, dm)
    assert recorder.under(train_root), "the training folder was read"
    assert recorder.under(test_root) == []
    assert len(dm.split["test"]) == 0 and dm.test_set is None
    trainer.test(model, dm, verbose=False)
    assert len(recorder.under(test_root)) >= 10 and len(dm.test_set) == 10


def test_split_is_saved_beside_the_run_and_reused(tmp_path, fast_trainer):
    dm = DigitsDataModule(split_seed=4)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, **fast_trainer)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    path = tmp_path / "splits.json"
    saved = json.loads(path.read_text())
    assert saved["split_seed"] == 4 and saved["num_samples"] == 1797
    for key in ("train", "val", "test"):
        assert saved[key] == dm.split[key].tolist()
    # A run in the same folder reuses the file's indices, not a recomputation.
    swapped = dict(saved, train=saved["train"][1:] + saved["val"][:1], val=saved["train"][:1] + saved["val"][1:])
    swapped["train"], swapped["val"] = sorted(swapped["train"]), sorted(swapped["val"])
    path.write_text(json.dumps(swapped))
    again = DigitsDataModule(split_seed=4)
    pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, **fast_trainer).fit(
        SimpleCNN(channels=(4,), hidden=()), again
    )
    assert again.split["val"].tolist() == swapped["val"]


def test_resume_restores_the_checkpoint_split(tmp_path, fast_trainer):
    args = dict(fast_trainer, enable_checkpointing=True)
    dm = DigitsDataModule(split_seed=2)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, **args)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    ckpt = trainer.checkpoint_callback.best_model_path
    state = torch.load(ckpt, weights_only=True)["DigitsDataModule"]
    assert state["split_digest"] and state["split_file"] == str(tmp_path / "splits.json")
    other = tmp_path / "resumed"
    resumed = DigitsDataModule(split_seed=2)
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, **dict(args, default_root_dir=other))
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), resumed, ckpt_path=ckpt)
    for key in ("train", "val", "test"):
        np.testing.assert_array_equal(resumed.split[key], dm.split[key])
    assert json.loads((other / "splits.json").read_text())["digest"] == state["split_digest"]


def test_light_augmentation_does_not_hurt_digits(fast_trainer):
    """Light augmentation (small rotation and shift, no flips) is no worse than none: mean of 3 seeds.

    The bar: the mean test accuracy with augmentation is at least the mean without, less one test image
    (1/269), the resolution of a single run.
    """
    torch.set_num_threads(1)
    accs: dict[str | None, list[float]] = {None: [], "light": []}
    for seed in (0, 1, 2):
        for augment in (None, "light"):
            pl.seed_everything(seed)
            dm = DigitsDataModule(augment=augment, augment_on="device")
            accs[augment].append(_fit_and_test(SimpleCNN(channels=(16, 32)), dm, fast_trainer, 30, str(augment)))
    plain, light = float(np.mean(accs[None])), float(np.mean(accs["light"]))
    print(f"SimpleCNN test accuracy on digits, seeds 0-2: no augmentation {accs[None]} (mean {plain:.4f}),")
    print(f"light augmentation {accs['light']} (mean {light:.4f})")
    assert light >= plain - 1 / 269


def test_device_augmentation_runs_on_training_batches_only(fast_trainer):
    seen = {}

    class Probe(SimpleCNN):
        def training_step(self, batch, batch_idx):
            seen.setdefault("train", batch[0].clone())
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            seen.setdefault("val", batch[0].clone())
            return super().validation_step(batch, batch_idx)

    dm = DigitsDataModule(augment="strong", augment_on="device", normalize="none", batch_size=32)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, **fast_trainer
    )
    trainer.fit(Probe(channels=(4,), hidden=()), dm)
    assert dm.augment_where == "device"
    raw_val = dm.val_set.tensors[0][:32]
    torch.testing.assert_close(seen["val"], raw_val)  # validation batches untouched
    train_images = dm.train_set.tensors[0]
    exact = [(train_images == img).flatten(1).all(1).any().item() for img in seen["train"]]
    assert sum(exact) < 32  # training batches were augmented


def test_cpu_augmentation_trains_through_workers_path(fast_trainer):
    dm = DigitsDataModule(augment=["hflip", "rotation"], augment_on="cpu", batch_size=64)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, **fast_trainer)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    assert dm.augment_where == "cpu"
    x, _ = dm.train_set[0]
    assert x.shape == (1, 8, 8)


def test_preview_callback_writes_a_png(tmp_path, fast_trainer):
    dm = DigitsDataModule(augment="light")
    callback = AugmentationPreview(images=3, versions=5, scale=4)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, callbacks=[callback], **fast_trainer)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    assert callback.path == tmp_path / "augment_preview.png"
    with Image.open(callback.path) as img:
        assert img.size == (6 * (8 * 4 + 8) + 8, 3 * (8 * 4 + 8) + 8)
