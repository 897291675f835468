"""Class-balanced or weighted draws with replacement: seeded, sharded over ranks, resumable like the shuffle order."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.data.sampling import SeededSampler

#: How the training loader draws: a seeded permutation, class-balanced draws, or draws by ``sampler_weights``.
SamplerName = Literal["shuffle", "balanced", "weighted"]
SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)

__all__ = [
    "SAMPLER_NAMES",
    "SamplerName",
    "WeightedSeededSampler",
    "balanced_weights",
    "check_sampler",
    "training_sampler",
]


class WeightedSeededSampler(SeededSampler):
    """Indices drawn with replacement in proportion to ``weights``: one seeded global draw per epoch, sharded.

    Every rank draws the same ``total_size`` indices from ``seed + epoch`` (``torch.multinomial`` with its own
    generator, so the global RNG is not touched) and takes every ``num_replicas``-th from position ``rank``:
    the ranks share one draw, none repeats another's part. An epoch is ``num_samples`` draws in all (default:
    as many as there are weights), rounded up to a multiple of the rank count. Being a
    :class:`~lightning_cnn.data.sampling.SeededSampler`, it resumes in the middle of an epoch the same way
    (:meth:`skip`, :class:`~lightning_cnn.data.sampling.ResumableDataLoader`).

    Args:
        weights: one weight >= 0 per sample of the training set (not all 0).
        num_samples: draws per epoch over all ranks; ``None``: ``len(weights)``.
        seed: seed of the draws; epoch ``e`` uses ``seed + e``.
        num_replicas: number of ranks sharing the epoch.
        rank: this rank, in ``[0, num_replicas)``.

    Example:
        >>> sampler = WeightedSeededSampler([1.0, 0.0, 1.0], num_samples=6, seed=0)
        >>> draws = list(sampler)
        >>> len(draws), set(draws) <= {0, 2}, draws == list(WeightedSeededSampler([1.0, 0.0, 1.0], 6, seed=0))
        (6, True, True)
        >>> shards = [list(WeightedSeededSampler([1.0, 0.0, 1.0], 6, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
        >>> shards[0] + shards[1] == draws[0::2] + draws[1::2]
        True
    """

    def __init__(
        self,
        weights: Sequence[float] | np.ndarray | torch.Tensor,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.ndim != 1 or w.numel() == 0 or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or w.sum() <= 0:
            shown = w.tolist() if w.numel() <= 8 else f"{w.numel()} values in [{w.min():g}, {w.max():g}]"
            raise ValueError(f"Expected weights to be finite numbers >= 0, not all 0, but got {shown}.")
        if num_samples is not None:
            check_positive("num_samples", num_samples, integer=True)
        super().__init__(range(w.numel()), seed=seed, num_replicas=num_replicas, rank=rank)
        self.weights = w
        self.num_samples = math.ceil((w.numel() if num_samples is None else num_samples) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.order_key = "weighted:" + hashlib.sha256(w.numpy().tobytes()).hexdigest()[:16]

    def indices(self, epoch: int | None = None) -> list[int]:
        """This rank's part of the epoch's draws (default: the current epoch)."""
        g = torch.Generator()
        g.manual_seed(self.seed + (self.epoch if epoch is None else epoch))
        draws = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g)
        return draws[self.rank : self.total_size : self.num_replicas].tolist()


def balanced_weights(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """``1 / n_c`` for each sample of class ``c``: every class present is drawn equally often on average.

    Example:
        >>> balanced_weights([0, 0, 0, 1]).tolist()
        [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]
    """
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim == 2:
        raise ValueError(
            "Expected class indices for sampler='balanced' (every class drawn equally often), but got a multi-label"
            f" 0/1 matrix {list(y.shape)}, where an image has several labels: use sampler='weighted' with"
            " sampler_weights of your choice, or the shuffle."
        )
    counts = np.bincount(y)
    return 1.0 / counts[y]


def check_sampler(
    sampler: str, sampler_weights: Sequence[float] | None, samples_per_epoch: int | None, device_resident: bool
) -> None:
    """Refuse an unknown sampler, weights without ``sampler="weighted"`` (or the reverse), a bad epoch length.

    Example:
        >>> check_sampler("weighted", None, None, False)
        Traceback (most recent call last):
        ...
        ValueError: Expected sampler_weights to be one weight per sample with sampler='weighted', but got None.
    """
    check_choice("sampler", sampler, SAMPLER_NAMES)
    if (sampler == "weighted") != (sampler_weights is not None):
        raise ValueError(
            f"Expected sampler_weights to be one weight per sample with sampler='weighted', but got"
            f" {'None' if sampler_weights is None else 'weights'}"
            f"{'' if sampler == 'weighted' else f' with sampler={sampler!r}'}."
        )
    if samples_per_epoch is not None:
        check_positive("samples_per_epoch", samples_per_epoch, integer=True)
        if sampler == "shuffle":
            raise ValueError(
                "Expected samples_per_epoch to be None with sampler='shuffle' (an epoch is one pass over the"
                f" training split), but got {samples_per_epoch!r}. Use sampler='balanced' or 'weighted' to set it."
            )
    if sampler != "shuffle" and device_resident:
        raise ValueError(
            f"sampler={sampler!r} draws through the training loader's sampler, which device_resident=True does"
            " not use: pass device_resident=False, or sampler='shuffle'."
        )


def _dataset_labels(dataset: Any) -> np.ndarray | None:
    """The ``labels`` a dataset (or the dataset it wraps) holds, one per sample, when it has them."""
    while dataset is not None:
        labels = getattr(dataset, "labels", None)
        if labels is not None and not callable(labels) and len(labels) == len(dataset):
            return np.asarray(labels, dtype=np.int64)
        dataset = getattr(dataset, "dataset", None)
    return None


def training_sampler(
    dataset: Dataset,
    sampler: str,
    pool_labels: np.ndarray,
    train_indices: np.ndarray,
    sampler_weights: Sequence[float] | None,
    samples_per_epoch: int | None,
    **shard: Any,
) -> SeededSampler:
    """The training set's sampler: :class:`SeededSampler` for ``"shuffle"``, else :class:`WeightedSeededSampler`.

    Args:
        dataset: the training set (index ``j`` is the sample ``train_indices[j]`` of the pool).
        sampler: ``"shuffle"``, ``"balanced"`` or ``"weighted"``.
        pool_labels: the labels of the whole pool (every sample the split divides).
        train_indices: the training split's indices into the pool.
        sampler_weights: one weight per sample of the pool (``"weighted"``).
        samples_per_epoch: draws per epoch over all ranks; ``None``: the training set's size.
        **shard: ``seed``, ``num_replicas`` and ``rank``.

    Raises:
        ValueError: for ``sampler_weights`` of another length than the pool, or weights that cannot be matched
            to the training set (a source dropped samples).
    """
    if sampler == "shuffle":
        return SeededSampler(dataset, **shard)
    n = len(dataset)  # type: ignore[arg-type]
    if sampler == "balanced":
        labels = pool_labels[train_indices] if len(train_indices) == n else _dataset_labels(dataset)
        if labels is None:
            raise ValueError(f"sampler='balanced' needs one label per training sample: the training set has {n}.")
        weights = balanced_weights(labels)
    else:
        if sampler_weights is None or len(sampler_weights) != len(pool_labels):
            got = None if sampler_weights is None else f"{len(sampler_weights)} weights"
            raise ValueError(
                f"Expected sampler_weights to hold one weight per sample ({len(pool_labels)}, in the source's"
                f" order), but got {got}."
            )
        if len(train_indices) != n:
            raise ValueError(
                f"sampler='weighted': the training split has {len(train_indices)} samples and its set {n} (a source"
                " dropped some, e.g. skip_bad_files): the weights cannot be matched to them."
            )
        given = np.asarray(sampler_weights, dtype=np.float64)
        weights = given[train_indices]
        if not np.isfinite(given).all() or (given < 0).any() or weights.sum() <= 0:
            raise ValueError(
                "Expected sampler_weights to be finite numbers >= 0, not all 0 on the training split, but got"
                f" {given.size} values in [{given.min():g}, {given.max():g}]"
                f" ({weights.size} training samples with weights summing to {weights.sum():g})."
            )
    return WeightedSeededSampler(weights, samples_per_epoch, **shard)
