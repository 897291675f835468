"""A seeded, resumable training order: a sampler and a DataLoader that continue a killed epoch exactly."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["ResumableDataLoader", "SeededSampler", "capture_rng_state", "restore_rng_state"]


class SeededSampler(DistributedSampler):
    """Sample indices in an order that is a function of ``(seed, epoch)`` only, sharded by rank.

    Every rank computes the same permutation of ``range(len(dataset))`` from ``seed + epoch`` and takes
    every ``num_replicas``-th index from position ``rank`` (like :class:`~torch.utils.data.DistributedSampler`,
    of which this is a subclass, so Lightning does not wrap it in another distributed sampler). With
    ``drop_last=False`` the permutation is padded by repeating its head so that every rank gets the same
    number of samples. :meth:`skip` makes the next iteration start ``n`` samples into the epoch's shard,
    which is how a resumed run continues in the middle of an epoch; the length stays the full shard's.

    Args:
        dataset: the dataset (only its length is used).
        seed: seed of the order; epoch ``e`` uses ``seed + e``.
        shuffle: a random permutation (``False``: ``0, 1, 2, ...`` every epoch).
        num_replicas: number of ranks sharing the epoch.
        rank: this rank, in ``[0, num_replicas)``.
        drop_last: drop the tail that does not divide evenly among ranks instead of padding.

    Example:
        >>> sampler = SeededSampler(range(10), seed=3)
        >>> order = list(sampler)
        >>> sorted(order) == list(range(10)), order == list(SeededSampler(range(10), seed=3))
        (True, True)
        >>> sampler.skip(4)
        >>> list(sampler) == order[4:], len(sampler)
        (True, 10)
        >>> shards = [list(SeededSampler(range(5), seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
        >>> [len(s) for s in shards], sorted(set(shards[0] + shards[1]))
        ([3, 3], [0, 1, 2, 3, 4])
    """

    def __init__(
        self,
        dataset: Dataset | range | list[Any],
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"Expected num_replicas to be an int >= 1, but got {num_replicas!r}.")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"Expected rank to be an int in [0, {num_replicas}), but got {rank!r}.")
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self._skip = 0
        #: What the order is drawn from; a mid-epoch resume needs the same.
        self.order_key = "shuffle" if shuffle else "sequential"

    def indices(self, epoch: int | None = None) -> list[int]:
        """This rank's full list of indices for ``epoch`` (default: the current epoch)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        epoch = self.epoch if epoch is None else epoch
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        if self.drop_last:
            order = order[: self.total_size]
        elif len(order) < self.total_size:
            pad = self.total_size - len(order)
            order += (order * (pad // max(len(order), 1) + 1))[:pad]
        return order[self.rank : self.total_size : self.num_replicas]

    def skip(self, samples: int) -> None:
        """Start the next iteration ``samples`` indices into this rank's shard of the current epoch."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ValueError(f"Expected samples to be an int >= 0, but got {samples!r}.")
        self._skip = samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iteration; a pending :meth:`skip` of another epoch is dropped."""
        if epoch != self.epoch:
            self._skip = 0
        super().set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        start, self._skip = self._skip, 0
        return iter(self.indices()[start:])

    def __len__(self) -> int:
        return self.num_samples


class ResumableDataLoader(DataLoader):
    """A training DataLoader over a :class:`SeededSampler` that saves and restores its place in the epoch.

    Lightning calls :meth:`state_dict` when it writes a checkpoint and :meth:`load_state_dict` when it
    resumes a run in the middle of an epoch; the loader then yields the rest of that epoch in the same
    order. The state counts the batches handed out in the current epoch (Lightning does not prefetch
    from a loader with a length, so that is the number of batches trained on). The loader's own generator is
    seeded with ``seed + epoch`` when an iteration starts, so starting one draws nothing from the global RNG;
    new worker processes take their seeds from it. Persistent workers (``persistent_workers=True``, which
    the DataModules set when ``num_workers > 0``) are seeded once and their random streams run on across
    epochs, so random transforms inside workers are not repeated exactly by a resumed run: for exact resume
    with random per-sample transforms use ``num_workers=0``, or augment batches on the device.
    ``on_iter_start`` (optional) runs right before the first batch of each epoch is produced.

    Args:
        dataset: the training dataset.
        sampler: the sampler that gives the order.
        on_iter_start: a callable run when an iteration starts (the DataModule restores RNG state there).
        **kwargs: further :class:`~torch.utils.data.DataLoader` arguments (``batch_size``, ``num_workers``, ...).

    Example:
        >>> loader = ResumableDataLoader(list(range(10)), sampler=SeededSampler(range(10), seed=1), batch_size=3)
        >>> it = iter(loader)
        >>> first = next(it).tolist()
        >>> state = loader.state_dict()
        >>> state["batches"], state["epoch"]
        (1, 0)
        >>> rest = [b.tolist() for b in it]
        >>> again = ResumableDataLoader(list(range(10)), sampler=SeededSampler(range(10), seed=1), batch_size=3)
        >>> again.load_state_dict(state)
        >>> [b.tolist() for b in again] == rest
        True
    """

    sampler: SeededSampler

    def __init__(
        self,
        dataset: Dataset | list[Any],
        sampler: SeededSampler,
        on_iter_start: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(sampler, SeededSampler):
            raise TypeError(f"Expected sampler to be a SeededSampler, but got {type(sampler).__name__}.")
        kwargs.pop("shuffle", None)
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(dataset, sampler=sampler, **kwargs)  # type: ignore[arg-type]
        self.on_iter_start = on_iter_start
        self._epoch = sampler.epoch
        self._batches = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: nothing (no index drawn, no worker primed) happens before the first batch is asked
        # for, so an epoch set, or a state loaded, after ``iter()`` still applies.
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        sampler = self.sampler
        start = sampler._skip
        if self.on_iter_start is not None:
            self.on_iter_start()
        self._epoch, self._batches = sampler.epoch, start // self.batch_size if self.batch_size else 0
        if self.generator is not None:
            self.generator.manual_seed(sampler.seed + sampler.epoch)
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The epoch, the batches handed out in it and what the order depends on (primitives only)."""
        sampler = self.sampler
        return {
            "epoch": self._epoch,
            "batches": self._batches,
            "batch_size": self.batch_size,
            "seed": sampler.seed,
            "num_samples": sampler.num_samples,
            "num_replicas": sampler.num_replicas,
            "batches_per_epoch": len(self),
            "order": sampler.order_key,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue after ``state_dict["batches"]`` batches of ``state_dict["epoch"]`` on the next iteration.

        Raises:
            ValueError: when the state comes from a loader with another seed, batch size, length or rank count.
        """
        sampler = self.sampler
        now = {
            "batch_size": self.batch_size,
            "seed": sampler.seed,
            "num_samples": sampler.num_samples,
            "num_replicas": sampler.num_replicas,
            "order": sampler.order_key,
        }
        epoch, batches = resume_point(state_dict, now, len(self))
        sampler.set_epoch(epoch)
        sampler.skip(batches * int(self.batch_size or 1))
        self._epoch, self._batches = epoch, batches


def resume_point(state_dict: dict[str, Any], now: dict[str, Any], batches_per_epoch: int) -> tuple[int, int]:
    """``(epoch, batches done)`` where a training loader's saved state resumes; the next epoch after a full one.

    Raises:
        ValueError: when a setting in ``now`` (batch size, seed, length, ...) differs from the saved state's.
    """
    epoch, batches = int(state_dict["epoch"]), int(state_dict["batches"])
    if batches >= int(state_dict.get("batches_per_epoch", batches + 1)):
        return epoch + 1, 0  # the saved epoch was complete: any settings may start the next one
    for key, value in now.items():
        if key in state_dict and state_dict[key] != value:
            raise ValueError(
                f"Cannot resume the training loader in the middle of an epoch: the checkpoint's loader had"
                f" {key}={state_dict[key]!r}, this one has {key}={value!r}. Resume with the same settings,"
                " or from a checkpoint written at the end of an epoch."
            )
    return (epoch + 1, 0) if batches >= batches_per_epoch else (epoch, batches)


def capture_rng_state() -> dict[str, Any]:
    """The state of torch's (CPU and CUDA), NumPy's and Python's global RNGs, as tensors and primitives.

    Example:
        >>> state = capture_rng_state()
        >>> a = torch.rand(2)
        >>> restore_rng_state(state)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            str(np_state[0]),
            torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            *map(float, np_state[2:]),
        ],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the global RNGs to a state from :func:`capture_rng_state` (parts that are missing stay as they are)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
