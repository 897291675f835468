"""The DataModule base that every source shares: lifecycle, split, normalization, augmentation, loaders, state."""

from __future__ import annotations

import copy
import inspect
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.augment import AugmentSpec, BatchAugmentation, build_augmentation
from lightning_cnn.data.balanced import SamplerName, check_sampler, training_sampler
from lightning_cnn.data.compatibility import check_member_checkpoint, check_model_matches, check_resume_settings
from lightning_cnn.data.contract import datamodule_contract, module_normalizes
from lightning_cnn.data.datasets import collate_images
from lightning_cnn.data.mixing import BatchMixing
from lightning_cnn.data.normalization import (
    NORMALIZE_NAMES,
    Normalization,
    NormalizationState,
    NormalizeName,
    dataset_statistics,
)
from lightning_cnn.data.placement import AUGMENT_ON_NAMES, AugmentedDataset, AugmentOn, resolve_augment_on
from lightning_cnn.data.resident import DeviceResidentLoader
from lightning_cnn.data.sampling import ResumableDataLoader, capture_rng_state, restore_rng_state
from lightning_cnn.data.source import passed_on_signature
from lightning_cnn.data.splits import SplitState, check_folds, check_fractions, split_digest

__all__ = ["ClassifierDataModule"]


class ClassifierDataModule(SplitState, NormalizationState, BatchMixing, pl.LightningDataModule):
    """Shared logic of every image-classification DataModule.

    A source subclass implements :meth:`labels` (class index of every sample, cheap: no image decoded)
    and :meth:`make_dataset` (a dataset of ``(image, label)`` for given indices), and, when it has an
    explicit test set, :attr:`has_test_source` and :meth:`make_test_dataset` (the interface is
    :class:`~lightning_cnn.data.source.DataSource`; the split's handling is
    :class:`~lightning_cnn.data.splits.SplitState`). This base computes a
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
    :func:`~lightning_cnn.augment.factory.build_augmentation`). ``augment_on="cpu"`` runs it per sample with
    torchvision v2 in the loader workers; ``"device"`` runs it batched after the transfer to the device,
    with independent random parameters per sample; ``"auto"`` picks the faster one for the accelerator
    and image size (:func:`~lightning_cnn.data.placement.resolve_augment_on`).

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

    K-fold: ``num_folds=K, fold=k`` keeps the test split of the single split (the same indices) and deals the rest
    into K stratified folds (:func:`~lightning_cnn.data.splits.kfold_split`); fold k validates, the others train.
    ``sampler="balanced"`` draws training samples with replacement, every class equally often
    (:class:`~lightning_cnn.data.balanced.WeightedSeededSampler`: seeded, sharded, resumable like the shuffle).

    A source takes its own arguments and ``**kwargs``, passed on to this base with ``super().__init__(**kwargs)``:
    the command line lists and accepts the arguments below for every source, and :meth:`save_hyperparameters`
    records them with their values (defaults included).

    Args:
        batch_size: samples per batch.
        val_fraction: share of each class for validation (with ``num_folds``: only where the test split is cut).
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
        num_folds: split train and validation into this many stratified folds (``None``: one split).
        fold: the fold that validates, ``0..num_folds-1`` (with ``num_folds`` only).
        sampler: ``"shuffle"`` (each sample once an epoch), ``"balanced"`` or ``"weighted"`` (by ``sampler_weights``).
        sampler_weights: one weight per sample of the source, in its order (``sampler="weighted"``).
        samples_per_epoch: draws per epoch of ``"balanced"`` or ``"weighted"`` (``None``: the training split's size).
        mixup_alpha: MixUp of training batches on the device, ``Beta(alpha, alpha)`` weights (``0``: off); the
            module then gets soft targets ``[B, K]`` (:class:`~lightning_cnn.data.mixing.BatchMixing`).
        cutmix_alpha: CutMix of training batches on the device, likewise (``0``: off).
        mix_prob: probability that a training sample is mixed (drawn per sample).
        mix_switch_prob: probability of CutMix rather than MixUp for a mixed sample, when both are on.
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
        num_folds: int | None = None,
        fold: int | None = None,
        sampler: SamplerName = "shuffle",
        sampler_weights: list[float] | None = None,
        samples_per_epoch: int | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        mix_switch_prob: float = 0.5,
    ) -> None:
        # The shared arguments as given: recorded by save_hyperparameters() of a source that passes them on.
        self._shared_arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        check_positive("batch_size", batch_size, integer=True)
        check_positive("num_workers", num_workers, allow_zero=True, integer=True)
        check_choice("normalize", normalize, NORMALIZE_NAMES)
        check_choice("augment_on", augment_on, AUGMENT_ON_NAMES)
        check_fractions(val_fraction, test_fraction)
        check_folds(num_folds, fold)
        check_sampler(sampler, sampler_weights, samples_per_epoch, device_resident)
        self._init_mixing(mixup_alpha, cutmix_alpha, mix_prob, mix_switch_prob)
        if device_resident and augment is not None and augment_on == "cpu":
            raise ValueError(
                "device_resident=True draws batches on the device, where per-sample CPU augmentation cannot run:"
                " pass augment_on='device' or 'auto'."
            )
        self.device_resident = device_resident
        self.normalization = Normalization(normalize, mean, std)
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.num_folds, self.fold = num_folds, fold
        self.sampler, self.sampler_weights, self.samples_per_epoch = sampler, sampler_weights, samples_per_epoch
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.augmentation: BatchAugmentation | None = build_augmentation(augment)
        self.augment_on = augment_on
        self.augment_where: Literal["cpu", "device"] | None = None
        self._split: dict[str, np.ndarray] | None = None
        self.split_file: Path | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.predict_set: Dataset | None = None
        self._pending_rng: dict[str, Any] | None = None

    #: Shared arguments a source sets itself rather than take from its caller (e.g. ``test_fraction``).
    fixed_arguments: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a source that passes the shared arguments on through ``**kwargs`` a signature that lists them."""
        super().__init_subclass__(**kwargs)
        cls.__signature__ = passed_on_signature(cls)  # type: ignore[attr-defined]

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Record the ``__init__`` arguments as :attr:`hparams`, the shared ones a source passes on included.

        As Lightning's, and a source that passes the shared arguments on through ``**kwargs`` gets them all
        recorded with their values, defaults included (Lightning's alone sees only those given). Names in
        ``ignore`` are left out of both.
        """
        if frame is None:
            frame = inspect.currentframe().f_back  # type: ignore[union-attr]
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        if args:
            return
        skip = {ignore} if isinstance(ignore, str) else set(ignore or ())
        skip |= set(self.fixed_arguments)
        missing = {k: v for k, v in self._shared_arguments.items() if k not in skip and k not in self.hparams}
        if missing:
            self.hparams.update(missing)
            # Lightning's private copy behind `hparams_initial` (what loggers record), taken by its own call.
            self._hparams_initial = copy.deepcopy(self._hparams)

    #: Seed of the training order; ``None``: the seed of ``seed_everything`` (``PL_GLOBAL_SEED``), else ``split_seed``.
    shuffle_seed: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def setup(self, stage: str) -> None:
        self._check_module()
        statistics = self.normalization.statistics()
        if statistics is not None and len(statistics[0]) != self.in_channels:
            self.use_statistics(*statistics)  # one value per channel, or refused
        if stage == "predict" and not self.has_pool:  # a predict folder alone: no split, statistics from a checkpoint
            self.predict_set = self.predict_set or self.make_predict_dataset()
            return
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
        if self.normalize == "dataset" and not self.normalization.has_statistics:
            # In test: a fresh process without a checkpoint gets the same numbers from the same training split.
            self.normalization.set_statistics(*self._train_statistics())

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
        return AugmentedDataset(dataset, self.augmentation.to_torchvision(tuple(x.shape[-2:])))

    def _check_module(self) -> None:
        """Refuse a model whose class or channel count disagrees with the data, naming both numbers."""
        trainer = self._trainer_or_none()
        if trainer is not None:
            check_model_matches(self, getattr(trainer, "lightning_module", None))

    def _train_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training split, streamed in float64."""
        dataset = self.make_dataset(self.split["train"], train=False)
        return dataset_statistics(dataset, self.num_workers, type(self).__name__, self.split["train"])

    def preview_images(self, count: int = 4) -> torch.Tensor:
        """The first ``count`` training images ``[count, C, H, W]``, before augmentation and normalization."""
        dataset = self.make_dataset(self.split["train"][:count], train=False)
        return torch.stack([dataset[i][0] for i in range(len(dataset))])  # type: ignore[arg-type]

    # ------------------------------------------------------------------ loaders
    def _pin(self) -> bool:
        """``pin_memory``, or (when ``None``) whether the trainer runs on a CUDA GPU."""
        if self.pin_memory is not None:
            return self.pin_memory
        trainer = self._trainer_or_none()
        return trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders are requested.")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            collate_fn=collate_images,
            shuffle=shuffle,
            # Its own generator: starting an evaluation loader must not draw from the global RNG, or a run
            # resumed from a checkpoint written before a validation would continue with another random stream.
            generator=torch.Generator(),
            num_workers=self.num_workers,
            pin_memory=self._pin(),
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
        sampler = training_sampler(
            self.train_set, self.sampler, self.labels(), self.split["train"], self.sampler_weights,
            self.samples_per_epoch, seed=self._order_seed(), num_replicas=world, rank=rank,
        )  # fmt: skip
        if trainer is not None:
            sampler.set_epoch(trainer.current_epoch)
        return ResumableDataLoader(
            self.train_set,
            sampler=sampler,
            on_iter_start=self._restore_pending_rng,
            batch_size=self.batch_size,
            collate_fn=collate_images,
            num_workers=self.num_workers,
            pin_memory=self._pin(),
            persistent_workers=self.num_workers > 0,
        )

    def _restore_pending_rng(self) -> None:
        """Put back the RNG state of a loaded checkpoint, once, right before the first training batch."""
        if self._pending_rng is not None:
            state, self._pending_rng = self._pending_rng, None
            restore_rng_state(state)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self._split is not None and len(self._split["val"]) == 0:  # val_fraction=0: none, which Lightning skips
            return []
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
        if self.mixing.enabled and trainer is not None and trainer.training:
            x, rest = self.mix_batch(x, rest, trainer.global_rank)
        module = getattr(trainer, "lightning_module", None)  # one that normalizes raw images itself gets them raw
        return (x if module_normalizes(module) else self.normalize_images(x), *rest)

    def input_contract(self) -> dict[str, Any]:
        """What the batches are (:func:`~lightning_cnn.data.contract.datamodule_contract`), for the module to own."""
        return datamodule_contract(self)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            **self.split_state(),
            "rng": capture_rng_state(),
            **self.mixing_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        check_resume_settings(self, state_dict)
        self.load_mixing_state(state_dict)
        if state_dict.get("mean") is not None:
            self.normalization.set_statistics(state_dict["mean"], state_dict["std"])
        if state_dict.get("rng") is not None:
            self._pending_rng = state_dict["rng"]
        digest = state_dict.get("split_digest")
        if digest is not None and self.has_pool:
            self._restore_split(digest, state_dict.get("split_file"))

    def check_checkpoint(self, checkpoint: Mapping[str, Any], path: str, stage: str | None) -> None:
        """Refuse a checkpoint of other classes or channels, normalized otherwise, or trained on a split that leaks.

        The split matters when the evaluated set of ``stage`` comes from it: validation, and test or predict without
        a set of their own. A checkpoint that holds no DataModule state passes.

        Raises:
            ValueError: naming ``path``, the digests or the statistics that differ.
        """
        check_member_checkpoint(self, checkpoint, path, stage)

    def _restore_split(self, digest: str, split_file: str | None) -> None:
        """Use the checkpoint's split: from its ``splits.json`` when that file is still there, else recomputed."""
        if self._split is not None and split_digest(self._split) == digest:
            return
        split = self._checkpoint_split(digest, split_file)
        rebuild_train, rebuild_test = self.train_set is not None, self.test_set is not None
        self._split = split
        self.train_set = self.val_set = self.test_set = None
        if rebuild_train:
            self.train_set = self._train_dataset()
            self.val_set = self.make_dataset(split["val"], train=False)
        if rebuild_test:
            self.setup("test")
        self._write_split_file()
