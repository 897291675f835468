"""Input normalization of a DataModule: dataset statistics, per instance, or none, as a module with buffers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_cnn._utils.validation import check_choice, check_statistics, check_together
from lightning_cnn.data.datasets import collate_images
from lightning_cnn.data.source import DataSource

__all__ = [
    "NORMALIZE_NAMES",
    "Normalization",
    "NormalizationState",
    "NormalizeName",
    "dataset_statistics",
    "fit_to_channels",
]

NormalizeName = Literal["dataset", "instance", "none"]
NORMALIZE_NAMES: tuple[str, ...] = get_args(NormalizeName)


class Normalization(nn.Module):
    """Normalize a batch ``[B, C, H, W]``: with per-channel statistics, per image, or not at all.

    ``"dataset"`` subtracts :attr:`mean` and divides by :attr:`std` (buffers ``[C]``, set at construction,
    by :meth:`set_statistics`, or later from the training split); ``"instance"`` scales each image to zero
    mean and unit variance; ``"none"`` returns the batch as it is. The buffers follow the batch to its
    device on the first call there (the module moves itself), so the statistics are copied once per device.
    The input is never modified in place.

    Args:
        mode: ``"dataset"``, ``"instance"`` or ``"none"``.
        mean: per-channel mean (``None``: set later).
        std: per-channel std, given together with ``mean``.

    Raises:
        ValueError: for an unknown mode, only one of ``mean`` and ``std``, or statistics that are not finite
            numbers of one length with every std > 0.

    Example:
        >>> norm = Normalization("dataset", mean=[0.5], std=[0.25])
        >>> norm(torch.full((1, 1, 2, 2), 0.75))[0, 0]
        tensor([[1., 1.],
                [1., 1.]])
    """

    mean: torch.Tensor | None
    std: torch.Tensor | None

    def __init__(
        self, mode: NormalizeName = "dataset", mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.mode = check_choice("normalize", mode, NORMALIZE_NAMES)
        check_together("mean", mean, "std", std)
        if mean is not None and std is not None:
            check_statistics(mean, std)
        self.register_buffer("mean", None if mean is None else torch.tensor([float(v) for v in mean]))
        self.register_buffer("std", None if std is None else torch.tensor([float(v) for v in std]))

    @property
    def has_statistics(self) -> bool:
        """Whether :attr:`mean` and :attr:`std` are set."""
        return self.mean is not None and self.std is not None

    def set_statistics(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> None:
        """Use these per-channel statistics from now on (unchecked: see :func:`fit_to_channels`)."""
        self.mean = torch.tensor([float(v) for v in mean], dtype=torch.float32)
        self.std = torch.tensor([float(v) for v in std], dtype=torch.float32)

    def statistics(self) -> tuple[list[float], list[float]] | None:
        """``(mean, std)`` as lists of floats, or ``None`` before they are set."""
        if self.mean is None or self.std is None:
            return None
        return self.mean.tolist(), self.std.tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` ``[B, C, H, W]`` (a new tensor)."""
        if self.mode == "none":
            return x
        if self.mode == "instance":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
            return (x - mean) / std
        if self.mean is None or self.std is None:
            raise RuntimeError("normalize='dataset' needs statistics: call setup('fit') or load a checkpoint first.")
        if self.mean.device != x.device:
            self.to(x.device)
        shape = (1, -1, 1, 1)
        return (x - self.mean.to(x.dtype).view(shape)) / self.std.to(x.dtype).view(shape)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def fit_to_channels(values: Sequence[Any], name: str, channels: int, owner: str) -> list[float]:
    """``values`` as one float per channel: as they are, one value repeated, or an RGB statistic averaged for gray.

    Args:
        values: the statistic (checked finite by :func:`~lightning_cnn._utils.validation.check_statistics`).
        name: ``"mean"`` or ``"std"``, for the message.
        channels: image channels.
        owner: the DataModule's class name, for the message.
        indices: the sample index (in the source) of each image of ``dataset``, for the message.

    Raises:
        ValueError: for a length that fits neither one value nor the image channels.

    Example:
        >>> fit_to_channels([0.25, 0.5, 0.75], "mean", 1, "Data")
        [0.5]
    """
    if len(values) == channels:
        return [float(v) for v in values]
    if len(values) == 1 or (channels == 1 and len(values) == 3):  # one value, or an RGB statistic
        return [sum(float(v) for v in values) / len(values)] * channels
    allowed = "1 or 3" if channels == 1 else f"1 or {channels}"
    raise ValueError(
        f"Expected {name} to have {allowed} values ({owner} has {channels} image channels), but got {list(values)!r}."
    )


def dataset_statistics(
    dataset: Dataset, num_workers: int, owner: str, indices: Sequence[int] | np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the images of ``dataset`` (``(image, label)`` samples), streamed in float64.

    Args:
        dataset: the training split, without augmentation.
        num_workers: loader worker processes.
        owner: the DataModule's class name, for the message.
        indices: the sample index (in the source) of each image of ``dataset``, for the message.

    Raises:
        ValueError: when the dataset holds no images, or a NaN or infinite pixel (the statistics, and then every
            normalized batch and the training loss, would be NaN), naming the first such image.
    """
    total = seen = 0
    s = sq = None
    for x, _ in DataLoader(dataset, batch_size=256, num_workers=num_workers, collate_fn=collate_images):
        x = x.double()
        finite = torch.isfinite(x).flatten(1).all(1)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            bad = x[first][~torch.isfinite(x[first])][0].item()
            where = (
                f" (sample {int(indices[seen + first])} of the source, as in splits.json)"
                if indices is not None
                else ""
            )
            raise ValueError(
                f"Expected the training images of {owner} to hold finite pixel values, but got {bad} in image"
                f" {seen + first} of its training split{where} ({int((~finite).sum())} of the {x.shape[0]} images from"
                f" {seen} on hold NaN or infinite values): its normalization statistics would be NaN and training"
                " would turn to NaN. Fix or drop those images where the source reads them."
            )
        seen += x.shape[0]
        dims = (0, 2, 3)
        s = x.sum(dims) if s is None else s + x.sum(dims)
        sq = (x * x).sum(dims) if sq is None else sq + (x * x).sum(dims)
        total += x.shape[0] * x.shape[2] * x.shape[3]
    if s is None or sq is None:
        raise ValueError(
            f"The training split of {owner} has no images to compute normalization statistics from"
            " (with skip_bad_files=True, every training image may have been unreadable)."
        )
    mean = s / total
    std = (sq / total - mean**2).clamp_min(0).sqrt().clamp_min(1e-6)
    return mean.float(), std.float()


class NormalizationState(DataSource):
    """A DataModule's normalization: its statistics, mode and the batch normalization (a mixin of the DataModules)."""

    normalization: Normalization

    def use_statistics(self, mean: list[float], std: list[float]) -> None:
        """Normalize with these per-channel statistics (e.g. a pretrained backbone's) instead of the training split's.

        One value is repeated over every channel; a three-value RGB statistic is averaged for one-channel images.
        A refused pair leaves the statistics as they were. Numbers may be Python's, NumPy's or one-element tensors.

        Raises:
            ValueError: for lengths that fit neither one value nor the image channels, a std <= 0, or a
                value that is not finite.
        """
        check_statistics(mean, std)
        name, channels = type(self).__name__, self.in_channels
        fitted = fit_to_channels(mean, "mean", channels, name), fit_to_channels(std, "std", channels, name)
        self.normalization.set_statistics(*fitted)

    @property
    def mean(self) -> list[float] | None:
        """Per-channel mean used by ``normalize="dataset"``."""
        statistics = self.normalization.statistics()
        return None if statistics is None else statistics[0]

    @property
    def std(self) -> list[float] | None:
        """Per-channel std used by ``normalize="dataset"``."""
        statistics = self.normalization.statistics()
        return None if statistics is None else statistics[1]

    @property
    def normalize(self) -> NormalizeName:
        """``"dataset"``, ``"instance"`` or ``"none"``: the mode of :attr:`normalization`."""
        return self.normalization.mode  # type: ignore[return-value]

    @normalize.setter
    def normalize(self, mode: NormalizeName) -> None:
        self.normalization.mode = check_choice("normalize", mode, NORMALIZE_NAMES)

    def normalize_images(self, x: torch.Tensor) -> torch.Tensor:
        """Apply this DataModule's normalization to a batch ``[B, C, H, W]`` (never in place)."""
        return self.normalization(x)
