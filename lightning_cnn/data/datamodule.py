"""The DataModule base that every source shares: split, normalization, augmentation, loaders."""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.data.augment import AugmentOn, AugmentSpec, BatchAugmentation, build_augmentation, resolve_augment_on
from lightning_cnn.data.resident import DeviceResidentLoader
from lightning_cnn.data.sampling import ResumableDataLoader, SeededSampler, capture_rng_state, restore_rng_state
from lightning_cnn.data.splits import check_fractions, stratified_split

__all__ = ["ClassifierDataModule", "NormalizeName", "collate_images"]

NormalizeName = Literal["dataset", "instance", "none"]
_NORMALIZE = ("dataset", "instance", "none")
_AUGMENT_ON = ("cpu", "device", "auto")
SPLIT_FILE = "splits.json"


class _Augmented(Dataset):
    """A dataset whose images pass through a per-sample transform (runs in the loader workers)."""

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        x, y = self.dataset[index]
        return self.transform(x), y


def _finite_number(value: Any) -> bool:
    """A finite real number: Python's, NumPy's or a one-element tensor's (not a bool, not a string)."""
    if isinstance(value, (bool, str, bytes)):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _check_statistics(mean: Any, std: Any) -> None:
    """Refuse normalization statistics that are not two equally long, non-empty lists of finite numbers, std > 0."""
    for name, values in (("mean", mean), ("std", std)):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise TypeError(f"Expected {name} to be a non-empty list of numbers (one per channel), but got {values!r}.")
        if not all(_finite_number(v) for v in values):
            raise ValueError(f"Expected every {name} value to be a finite number, but got {list(values)!r}.")
    if len(mean) != len(std):
        raise ValueError(f"Expected mean and std of the same length, but got {list(mean)!r} and {list(std)!r}.")
    if any(float(v) <= 0 for v in std):
        raise ValueError(f"Expected every std to be > 0, but got {list(std)!r}.")


def split_digest(split: dict[str, np.ndarray]) -> str:
    """A short fingerprint of a split's indices (to check that a resumed run uses the same split)."""
    h = hashlib.sha256()
    for key in ("train", "val", "test"):
        h.update(key.encode())
        h.update(np.asarray(split[key], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def collate_images(batch: list[Any]) -> Any:
    """Stack ``(image, label)`` samples into a batch; images of different sizes fail with a clear message.

    Example:
        >>> x, y = collate_images([(torch.zeros(1, 8, 8), 0), (torch.ones(1, 8, 8), 1)])
        >>> x.shape, y.tolist()
        (torch.Size([2, 1, 8, 8]), [0, 1])
    """
    first = batch[0][0] if isinstance(batch[0], (tuple, list)) else None
    if isinstance(first, torch.Tensor):
        for sample in batch[1:]:
            if sample[0].shape != first.shape:
                raise ValueError(
                    f"Images of different sizes in one batch: {tuple(first.shape)} and {tuple(sample[0].shape)}"
                    " ([C, H, W]). Set image_size (e.g. image_size=224) to resize every image to one size."
                )
    return default_collate(batch)


class ClassifierDataModule(pl.LightningDataModule):
    """Shared logic of every image-classification DataModule.

    A source subclass implements :meth:`labels` (class index of every sample, cheap: no image decoded)
    and :meth:`make_dataset` (a dataset of ``(image, label)`` for given indices), and, when it has an
    explicit test set, :attr:`has_test_source` and :meth:`make_test_dataset`. This base computes a
    seeded stratified split once (identical on every rank without communication: it depends only on the
    labels, the fractions and ``split_seed``), writes it as ``splits.json`` into the trainer's log folder
    (reused from there, and checked against the checkpoint, on resume), builds only the datasets a stage
    needs (the test set, and an explicit test source, in the ``test`` stage only), computes normalization
    statistics from the training split, augments training batches and normalizes each batch.

    Normalization: ``"dataset"`` uses per-channel mean and std of the training split (or ``mean`` and
    ``std`` when given, e.g. ImageNet's); ``"instance"`` scales each image to zero mean and unit
    variance; ``"none"`` leaves images as they are. The statistics are part of :meth:`state_dict`, so a
    checkpoint carries them to test and predict.

    Augmentation (training batches only): ``augment`` is a preset name (``"light"``, ``"flips"``,
    ``"standard"``, ``"strong"``), a list of augmentation names or a ``{name: options}`` dict (see
    :func:`~lightning_cnn.data.augment.build_augmentation`). ``augment_on="cpu"`` runs it per sample with
    torchvision v2 in the loader workers; ``"device"`` runs it batched after the transfer to the device,
    with independent random parameters per sample; ``"auto"`` picks the faster one for the accelerator
    and image size (:func:`~lightning_cnn.data.augment.resolve_augment_on`).

    Exact resume: the training order is a function of ``(seed, epoch)`` (:class:`~lightning_cnn.data.sampling.
    SeededSampler`; the seed is :attr:`shuffle_seed`, else the one of ``seed_everything``, else ``split_seed``),
    sharded by the trainer's rank and world size (so Lightning's ``use_distributed_sampler`` does not touch
    it), and the training loader saves its place in the epoch in every checkpoint. The global RNG states
    (torch, CUDA, NumPy, Python: dropout and augmentation draws) are part of :meth:`state_dict` and are put
    back right before the first training batch after a resume. A run killed in the middle of an epoch and
    resumed from its last checkpoint thus ends like an uninterrupted one (with ``deterministic=True``), also
    with ``device_resident=True``. Augmentation on the CPU in worker processes (``num_workers > 0``) is the
    exception: the workers' random streams restart at the resume point (use ``augment_on="device"`` or
    ``num_workers=0`` where that matters).

    Args:
        batch_size: samples per batch.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test set (unused when the source has its own test set).
        split_seed: seed of the split.
        normalize: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean to use instead of the training statistics.
        std: per-channel std to use instead of the training statistics.
        augment: augmentation of training images: preset, list or dict, or ``None``.
        augment_on: ``"cpu"``, ``"device"`` or ``"auto"``.
        num_workers: loader worker processes.
        pin_memory: pin host memory for faster transfers (``None``: when a GPU is used).
        device_resident: keep the training split on the trainer's device and draw shuffled batches there
            (:class:`~lightning_cnn.data.resident.DeviceResidentLoader`: no workers, no transfers); for data
            that fits in device memory. Augmentation then runs batched on the device.
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
        augment: AugmentSpec = None,
        augment_on: AugmentOn = "cpu",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__()
        check_positive("batch_size", batch_size, integer=True)
        check_positive("num_workers", num_workers, allow_zero=True, integer=True)
        check_choice("normalize", normalize, _NORMALIZE)
        check_choice("augment_on", augment_on, _AUGMENT_ON)
        check_fractions(val_fraction, test_fraction)
        if device_resident and augment is not None and augment_on == "cpu":
            raise ValueError(
                "device_resident=True draws batches on the device, where per-sample CPU augmentation cannot run:"
                " pass augment_on='device' or 'auto'."
            )
        self.device_resident = device_resident
        if (mean is None) != (std is None):
            raise ValueError("Expected mean and std to be given together, but got only one of them.")
        if mean is not None and std is not None:
            _check_statistics(mean, std)
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.normalize = normalize
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.augmentation: BatchAugmentation | None = build_augmentation(augment)
        self.augment_on = augment_on
        self.augment_where: Literal["cpu", "device"] | None = None
        self._mean: torch.Tensor | None = None if mean is None else torch.tensor([float(v) for v in mean])
        self._std: torch.Tensor | None = None if std is None else torch.tensor([float(v) for v in std])
        self._split: dict[str, np.ndarray] | None = None
        self.split_file: Path | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.predict_set: Dataset | None = None
        self._device_stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending_rng: dict[str, Any] | None = None

    #: Seed of the training order; ``None``: the seed of ``seed_everything`` (``PL_GLOBAL_SEED``), else ``split_seed``.
    shuffle_seed: int | None = None

    # ------------------------------------------------------------------ source interface
    def labels(self) -> np.ndarray:
        """Class index of every sample of the split pool (train, val and, without a test source, test)."""
        raise NotImplementedError

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        """A dataset of ``(image [C, H, W] float in [0, 1], label)`` for the given sample indices of the pool."""
        raise NotImplementedError

    @property
    def has_test_source(self) -> bool:
        """Whether the test set is a source of its own (then the pool splits into train and val only)."""
        return False

    def make_test_dataset(self) -> Dataset:
        """The explicit test set (only called in the ``test`` and ``predict`` stages)."""
        raise NotImplementedError

    def make_predict_dataset(self) -> Dataset | None:
        """Images to predict other than the test set, as a dataset of ``(image,)`` (``None``: predict the test set)."""
        return None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, in class-index order."""
        raise NotImplementedError

    @property
    def in_channels(self) -> int:
        """Channels of the images (1 grayscale, 3 RGB)."""
        raise NotImplementedError

    @property
    def image_size(self) -> int | None:
        """The larger side of the images the loaders give, when known."""
        return None

    # ------------------------------------------------------------------ split
    def _split_meta(self) -> dict[str, Any]:
        labels = np.ascontiguousarray(self.labels(), dtype=np.int64)
        return {
            # The labels' fingerprint keeps a split file of other data (same size, same seed) from being reused.
            "labels_digest": hashlib.sha256(labels.tobytes()).hexdigest()[:16],
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "test_fraction": 0.0 if self.has_test_source else self.test_fraction,
            "test_source": self.has_test_source,
        }

    def _compute_split(self) -> dict[str, np.ndarray]:
        test_fraction = 0.0 if self.has_test_source else self.test_fraction
        return stratified_split(
            self.labels(), self.val_fraction, test_fraction, self.split_seed, class_names=self.class_names
        )

    @property
    def split(self) -> dict[str, np.ndarray]:
        """The train / val / test indices, computed once from the labels and ``split_seed``."""
        if self._split is None:
            self._split = self._compute_split()
        return self._split

    def save_split(self, path: str | Path) -> None:
        """Write the split indices and what they were computed from as JSON (atomically)."""
        split = self.split
        data = self._split_meta() | {
            "num_samples": int(sum(len(v) for v in split.values())),
            "digest": split_digest(split),
        }
        data |= {k: v.tolist() for k, v in split.items()}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def load_split(self, path: str | Path) -> dict[str, np.ndarray]:
        """Read a split written by :meth:`save_split`, checking that it fits this DataModule's settings."""
        data = json.loads(Path(path).read_text())
        for key, value in self._split_meta().items():
            if data.get(key) != value:
                raise ValueError(
                    f"The split in {path} was made with {key}={data.get(key)!r}, but this {type(self).__name__}"
                    f" has {key}={value!r}."
                )
        return {k: np.asarray(data[k], dtype=np.int64) for k in ("train", "val", "test")}

    def _split_path(self) -> Path | None:
        trainer = self._trainer_or_none()
        if trainer is None:
            return None
        return Path(trainer.log_dir or trainer.default_root_dir) / SPLIT_FILE

    def _trainer_or_none(self) -> pl.Trainer | None:
        return getattr(self, "trainer", None)

    def _prepare_split(self) -> None:
        """Reuse ``splits.json`` of this run's folder when it fits, else compute the split; rank 0 writes it."""
        path = self._split_path()
        if path is None:
            return
        if self._split is None and path.is_file():
            try:
                self._split = self.load_split(path)
            except (ValueError, KeyError, json.JSONDecodeError) as err:
                warnings.warn(f"Not reusing {path}: {err} Computing the split again.", stacklevel=2)
        split = self.split
        self.split_file = path
        trainer = self._trainer_or_none()
        if trainer is not None and trainer.is_global_zero:
            current = None
            if path.is_file():
                try:
                    current = json.loads(path.read_text()).get("digest")
                except (OSError, json.JSONDecodeError):
                    current = None
            if current != split_digest(split):
                self.save_split(path)

    def predict_ids(self) -> list[str]:
        """An identifier for each image of the predict set, in its order.

        The image's file when the set reads files, else its position in the set when it is not the split's test
        set, else its index in the pool (the indices in ``splits.json``). Call it after ``setup("predict")``.
        """
        dataset = self.predict_set if self.predict_set is not None else self.test_set
        if dataset is None:
            raise RuntimeError("predict_ids() needs the predict set: call setup('predict') first.")
        paths = getattr(dataset, "paths", None)
        if paths is not None:
            return [str(p) for p in paths]
        if dataset is not self.test_set or self.has_test_source:
            return [str(i) for i in range(len(dataset))]  # type: ignore[arg-type]
        return [str(int(i)) for i in self.split["test"]]

    @property
    def class_weights(self) -> list[float]:
        """Balanced class weights ``n / (k * n_c)`` from the training split's labels."""
        y = self.labels()[self.split["train"]]
        counts = np.bincount(y, minlength=self.num_classes).astype(np.float64)
        counts[counts == 0] = np.inf
        return (len(y) / (self.num_classes * counts)).tolist()

    # ------------------------------------------------------------------ lifecycle
    def setup(self, stage: str) -> None:
        self._check_module()
        if self._mean is not None and self._std is not None and len(self._mean) != self.in_channels:
            self.use_statistics(self._mean.tolist(), self._std.tolist())  # one value per channel, or refused
        self._prepare_split()
        if stage in ("fit", "validate"):
            if self.train_set is None:
                self.train_set = self._train_dataset()
            if self.val_set is None:
                self.val_set = self.make_dataset(self.split["val"], train=False)
        elif stage == "predict" and self.predict_set is None:
            self.predict_set = self.make_predict_dataset()
        if stage == "test" or (stage == "predict" and self.predict_set is None):
            if self.test_set is None:
                if self.has_test_source:
                    self.test_set = self.make_test_dataset()
                elif len(self.split["test"]) == 0:
                    raise ValueError(
                        f"{type(self).__name__} has no test images: test_fraction={self.test_fraction!r} holds none"
                        f" out and there is no separate test set. Set test_fraction > 0 to {stage}."
                    )
                else:
                    self.test_set = self.make_dataset(self.split["test"], train=False)
        if self.normalize == "dataset" and self._mean is None:
            # In test: a fresh process without a checkpoint gets the same numbers from the same training split.
            self._mean, self._std = self._train_statistics()

    def _resolve_augment_on(self) -> Literal["cpu", "device"]:
        trainer = self._trainer_or_none()
        accelerator = "cpu"
        if trainer is not None:
            name = type(trainer.accelerator).__name__.lower()
            accelerator = "cpu" if name.startswith("cpu") else name.replace("accelerator", "")
        return resolve_augment_on(self.augment_on, accelerator, self.image_size, self.num_workers)

    def _train_dataset(self) -> Dataset:
        dataset = self.make_dataset(self.split["train"], train=True)
        if self.augmentation is None:
            return dataset
        self.augment_where = "device" if self.device_resident else self._resolve_augment_on()
        if self.augment_where == "device":
            return dataset
        x, _ = dataset[0]
        return _Augmented(dataset, self.augmentation.to_torchvision(tuple(x.shape[-2:])))

    def _check_module(self) -> None:
        """Refuse a model whose class or channel count disagrees with the data, naming both numbers."""
        trainer = self._trainer_or_none()
        module = getattr(trainer, "lightning_module", None) if trainer is not None else None
        hparams: Any = getattr(module, "hparams", None)
        if module is None or not hasattr(hparams, "get"):
            return
        for attr, hint in (
            ("num_classes", "classes"),
            ("in_channels", "image channels (grayscale 1, RGB 3)"),
        ):
            theirs = hparams.get(attr)
            try:
                ours = getattr(self, attr)
            except (NotImplementedError, FileNotFoundError, ValueError):
                continue
            if theirs is not None and ours is not None and int(theirs) != int(ours):
                raise ValueError(
                    f"{type(module).__name__} was built with {attr}={theirs}, but {type(self).__name__} has {ours}"
                    f" {hint}. Build the model with {attr}={ours} (the command line links it from the data)."
                )

    def _train_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training split, streamed in float64."""
        dataset = self.make_dataset(self.split["train"], train=False)
        total = 0
        s = sq = None
        for x, _ in DataLoader(dataset, batch_size=256, num_workers=self.num_workers, collate_fn=collate_images):
            x = x.double()
            dims = (0, 2, 3)
            s = x.sum(dims) if s is None else s + x.sum(dims)
            sq = (x * x).sum(dims) if sq is None else sq + (x * x).sum(dims)
            total += x.shape[0] * x.shape[2] * x.shape[3]
        if s is None or sq is None:
            raise ValueError(
                f"The training split of {type(self).__name__} has no images to compute normalization statistics from"
                " (with skip_bad_files=True, every training image may have been unreadable)."
            )
        mean = s / total
        std = (sq / total - mean**2).clamp_min(0).sqrt().clamp_min(1e-6)
        return mean.float(), std.float()

    def preview_images(self, count: int = 4) -> torch.Tensor:
        """The first ``count`` training images ``[count, C, H, W]``, before augmentation and normalization."""
        dataset = self.make_dataset(self.split["train"][:count], train=False)
        return torch.stack([dataset[i][0] for i in range(len(dataset))])  # type: ignore[arg-type]

    def use_statistics(self, mean: list[float], std: list[float]) -> None:
        """Normalize with these per-channel statistics (e.g. a pretrained backbone's) instead of the training split's.

        One value is repeated over every channel; a three-value RGB statistic is averaged for one-channel images.
        A refused pair leaves the statistics as they were. Numbers may be Python's, NumPy's or one-element tensors.

        Raises:
            ValueError: for lengths that fit neither one value nor the image channels, a std <= 0, or a
                value that is not finite.
        """
        _check_statistics(mean, std)
        channels = self.in_channels

        def fit(values: list[float], name: str) -> list[float]:
            if len(values) == channels:
                return [float(v) for v in values]
            if len(values) == 1 or (channels == 1 and len(values) == 3):  # one value, or an RGB statistic
                return [sum(float(v) for v in values) / len(values)] * channels
            allowed = "1 or 3" if channels == 1 else f"1 or {channels}"
            raise ValueError(
                f"Expected {name} to have {allowed} values ({type(self).__name__} has {channels} image"
                f" channels), but got {list(values)!r}."
            )

        fitted = fit(mean, "mean"), fit(std, "std")
        self._mean, self._std = (torch.tensor(v, dtype=torch.float32) for v in fitted)
        self._device_stats = None

    @property
    def mean(self) -> list[float] | None:
        """Per-channel mean used by ``normalize="dataset"``."""
        return None if self._mean is None else self._mean.tolist()

    @property
    def std(self) -> list[float] | None:
        """Per-channel std used by ``normalize="dataset"``."""
        return None if self._std is None else self._std.tolist()

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders are requested.")
        pin = self.pin_memory
        if pin is None:
            trainer = self._trainer_or_none()
            pin = trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            collate_fn=collate_images,
            shuffle=shuffle,
            # Its own generator: starting an evaluation loader must not draw from the global RNG, or a run
            # resumed from a checkpoint written before a validation would continue with another random stream.
            generator=torch.Generator(),
            num_workers=self.num_workers,
            pin_memory=pin,
            persistent_workers=self.num_workers > 0,
        )

    def _order_seed(self) -> int:
        if self.shuffle_seed is not None:
            return int(self.shuffle_seed)
        return int(os.environ.get("PL_GLOBAL_SEED", self.split_seed))

    def train_dataloader(self) -> DataLoader:
        """The training loader: seeded order per epoch, this rank's shard, resumable in the middle of an epoch."""
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders are requested.")
        trainer = self._trainer_or_none()
        if self.device_resident:
            if trainer is None:
                raise RuntimeError("device_resident=True needs a Trainer (its device and rank) to build the loader.")
            return DeviceResidentLoader.from_trainer(  # type: ignore[return-value]
                self.train_set,
                trainer,
                self.batch_size,
                seed=self._order_seed(),
                on_iter_start=self._restore_pending_rng,
            )
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = SeededSampler(self.train_set, seed=self._order_seed(), num_replicas=world, rank=rank)
        if trainer is not None:
            sampler.set_epoch(trainer.current_epoch)
        pin = self.pin_memory
        if pin is None:
            pin = trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return ResumableDataLoader(
            self.train_set,
            sampler=sampler,
            on_iter_start=self._restore_pending_rng,
            batch_size=self.batch_size,
            collate_fn=collate_images,
            num_workers=self.num_workers,
            pin_memory=pin,
            persistent_workers=self.num_workers > 0,
        )

    def _restore_pending_rng(self) -> None:
        """Put back the RNG state of a loaded checkpoint, once, right before the first training batch."""
        if self._pending_rng is not None:
            state, self._pending_rng = self._pending_rng, None
            restore_rng_state(state)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set if self.predict_set is not None else self.test_set, shuffle=False)

    # ------------------------------------------------------------------ on the device
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, *rest = batch
        trainer = self._trainer_or_none()
        if (
            self.augmentation is not None
            and self.augment_where == "device"
            and trainer is not None
            and trainer.training
        ):
            x = self.augmentation(x)
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
            "split_digest": split_digest(self.split) if self._split is not None else None,
            "split_file": str(self.split_file) if self.split_file is not None else None,
            "rng": capture_rng_state(),
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
        if state_dict.get("rng") is not None:
            self._pending_rng = state_dict["rng"]
        digest = state_dict.get("split_digest")
        if digest is not None:
            self._restore_split(digest, state_dict.get("split_file"))

    def check_checkpoint(self, checkpoint: Mapping[str, Any], path: str, stage: str | None) -> None:
        """Refuse a checkpoint normalized otherwise than this DataModule, or trained on another split where that leaks.

        The split matters when the evaluated set of ``stage`` comes from it: validation, and test or predict without
        a set of their own. A checkpoint that holds no DataModule state passes.

        Raises:
            ValueError: naming ``path``, the digests or the statistics that differ.
        """
        state = next((v for v in checkpoint.values() if isinstance(v, Mapping) and "split_digest" in v), None)
        if state is None:
            return
        name = type(self).__name__
        own_set = self.has_test_source or (stage == "predict" and self.predict_set is not None)
        from_split = stage == "val" or not own_set
        theirs = state.get("split_digest")
        if from_split and theirs is not None and theirs != (ours := split_digest(self.split)):
            raise ValueError(
                f"Ensemble member {path} was trained on another split (digest {theirs}) than this {name}'s ({ours}):"
                " its training images may be in the evaluated set. Use members trained on the same data with the"
                " same split_seed and fractions."
            )
        for key in ("mean", "std"):
            theirs, mine = state.get(key), getattr(self, key)
            # Statistics of two splits of one data set differ a little; another normalization differs a lot.
            if (
                theirs is not None
                and mine is not None
                and not torch.allclose(torch.tensor(theirs), torch.tensor(mine), rtol=0.05, atol=0.01)
            ):
                raise ValueError(
                    f"Ensemble member {path} was trained with normalization {key}={theirs}, but this {name}"
                    f" normalizes with {key}={mine} (more than 5% apart): the member would see inputs on another"
                    " scale."
                )

    def _restore_split(self, digest: str, split_file: str | None) -> None:
        """Use the checkpoint's split: from its ``splits.json`` when that file is still there, else recomputed."""
        if self._split is not None and split_digest(self._split) == digest:
            return
        split = None
        if split_file is not None and Path(split_file).is_file():
            candidate = self.load_split(split_file)
            if split_digest(candidate) == digest:
                split = candidate
        if split is None:
            candidate = self._compute_split()
            if split_digest(candidate) != digest:
                raise ValueError(
                    f"The checkpoint's split (digest {digest}) is not the one this {type(self).__name__} computes"
                    f" now, and its split file {split_file!r} is missing or different: the data changed since"
                    " training. Restore the data, or start a new run."
                )
            split = candidate
        rebuild_train, rebuild_test = self.train_set is not None, self.test_set is not None
        self._split = split
        self.train_set = self.val_set = self.test_set = None
        if rebuild_train:
            self.train_set = self._train_dataset()
            self.val_set = self.make_dataset(split["val"], train=False)
        if rebuild_test:
            self.setup("test")
        path = self._split_path()
        trainer = self._trainer_or_none()
        if path is not None and trainer is not None and trainer.is_global_zero:
            self.save_split(path)
            self.split_file = path
