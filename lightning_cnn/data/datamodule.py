"""The DataModule base that every source shares: split, normalization, loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn._validation import check_choice, check_positive
from lightning_cnn.data.splits import stratified_split

__all__ = ["ClassifierDataModule", "NormalizeName"]

NormalizeName = Literal["dataset", "instance", "none"]
_NORMALIZE = ("dataset", "instance", "none")


class ClassifierDataModule(pl.LightningDataModule):
    """Shared logic of every image-classification DataModule.

    A source subclass implements :meth:`labels` (class index of every sample, cheap: no image decoded)
    and :meth:`make_dataset` (a dataset of ``(image, label)`` for given indices). This base computes a
    seeded stratified split once (identical on every rank), builds only the datasets a stage needs (the
    test set is built in the ``test`` stage only), computes normalization statistics from the training
    split, and normalizes each batch after it reaches the device.

    Normalization: ``"dataset"`` uses per-channel mean and std of the training split (or ``mean`` and
    ``std`` when given, e.g. ImageNet's); ``"instance"`` scales each image to zero mean and unit
    variance; ``"none"`` leaves images as they are. The statistics are part of :meth:`state_dict`, so a
    checkpoint carries them to test and predict.

    Args:
        batch_size: samples per batch.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test set.
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        num_workers: loader worker processes.
        pin_memory: pin host memory for faster transfers (``None``: when a GPU is used).
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
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        check_positive("batch_size", batch_size)
        check_positive("num_workers", num_workers, allow_zero=True)
        check_choice("normalize", normalize, _NORMALIZE)
        if (mean is None) != (std is None):
            raise ValueError("Expected mean and std to be given together, but got only one of them.")
        if std is not None and any(s <= 0 for s in std):
            raise ValueError(f"Expected every std to be > 0, but got {list(std)!r}.")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.normalize = normalize
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._mean: torch.Tensor | None = torch.tensor(mean, dtype=torch.float32) if mean is not None else None
        self._std: torch.Tensor | None = torch.tensor(std, dtype=torch.float32) if std is not None else None
        self._split: dict[str, np.ndarray] | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._device_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ source interface
    def labels(self) -> np.ndarray:
        """Class index of every sample of the source (train, val and test pool)."""
        raise NotImplementedError

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        """A dataset of ``(image [C, H, W] float, label)`` for the given sample indices."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def in_channels(self) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------ split
    @property
    def split(self) -> dict[str, np.ndarray]:
        """The train / val / test indices, computed once from the labels and ``split_seed``."""
        if self._split is None:
            self._split = stratified_split(
                self.labels(), self.val_fraction, self.test_fraction, self.split_seed, class_names=self.class_names
            )
        return self._split

    def save_split(self, path: str | Path) -> None:
        """Write the split indices as JSON."""
        data = {k: v.tolist() for k, v in self.split.items()} | {"split_seed": self.split_seed}
        Path(path).write_text(json.dumps(data))

    @property
    def class_weights(self) -> list[float]:
        """Balanced class weights ``n / (k * n_c)`` from the training split's labels."""
        y = self.labels()[self.split["train"]]
        counts = np.bincount(y, minlength=self.num_classes).astype(np.float64)
        counts[counts == 0] = np.inf
        return (len(y) / (self.num_classes * counts)).tolist()

    # ------------------------------------------------------------------ lifecycle
    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate"):
            if self.train_set is None:
                self.train_set = self.make_dataset(self.split["train"], train=True)
            if self.val_set is None:
                self.val_set = self.make_dataset(self.split["val"], train=False)
            if self.normalize == "dataset" and self._mean is None:
                self._mean, self._std = self._train_statistics()
        elif stage in ("test", "predict"):
            if self.test_set is None:
                self.test_set = self.make_dataset(self.split["test"], train=False)
            if self.normalize == "dataset" and self._mean is None:
                # A fresh process without a checkpoint: the same numbers, from the same training split.
                self._mean, self._std = self._train_statistics()

    def _train_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training split, streamed in float64."""
        dataset = self.make_dataset(self.split["train"], train=False)
        total = 0
        s = sq = None
        for x, _ in DataLoader(dataset, batch_size=256, num_workers=self.num_workers):
            x = x.double()
            dims = (0, 2, 3)
            s = x.sum(dims) if s is None else s + x.sum(dims)
            sq = (x * x).sum(dims) if sq is None else sq + (x * x).sum(dims)
            total += x.shape[0] * x.shape[2] * x.shape[3]
        assert s is not None and sq is not None
        mean = s / total
        std = (sq / total - mean**2).clamp_min(0).sqrt().clamp_min(1e-6)
        return mean.float(), std.float()

    @property
    def mean(self) -> list[float] | None:
        return None if self._mean is None else self._mean.tolist()

    @property
    def std(self) -> list[float] | None:
        return None if self._std is None else self._std.tolist()

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders are requested.")
        pin = self.pin_memory
        if pin is None:
            pin = self.trainer is not None and self.trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=pin,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    # ------------------------------------------------------------------ on the device
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, *rest = batch
        return (self.normalize_images(x), *rest)

    def normalize_images(self, x: torch.Tensor) -> torch.Tensor:
        """Apply this DataModule's normalization to a batch ``[B, C, H, W]`` (never in place)."""
        if self.normalize == "none":
            return x
        if self.normalize == "instance":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
            return (x - mean) / std
        if self._mean is None or self._std is None:
            raise RuntimeError("normalize='dataset' needs statistics: call setup('fit') or load a checkpoint first.")
        if self._device_stats is None or self._device_stats[0].device != x.device:
            shape = (1, -1, 1, 1)
            self._device_stats = (
                self._mean.to(x.device).view(shape),
                self._std.to(x.device).view(shape),
            )
        mean, std = self._device_stats
        return (x - mean.to(x.dtype)) / std.to(x.dtype)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # A different split would let test samples of this run be training samples of the checkpoint's.
        for key in ("split_seed", "val_fraction", "test_fraction"):
            if key in state_dict and state_dict[key] != getattr(self, key):
                raise ValueError(
                    f"The checkpoint was trained with {key}={state_dict[key]!r}, but this {type(self).__name__}"
                    f" has {key}={getattr(self, key)!r}: its test split would overlap the checkpoint's training"
                    f" data. Pass {key}={state_dict[key]!r} (on the command line: --data.{key} {state_dict[key]})."
                )
        if state_dict.get("mean") is not None:
            self._mean = torch.tensor(state_dict["mean"], dtype=torch.float32)
            self._std = torch.tensor(state_dict["std"], dtype=torch.float32)
            self._device_stats = None
