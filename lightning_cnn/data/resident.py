"""A training loader that keeps the whole training set on the device and draws shuffled batches there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn._utils.validation import check_positive
from lightning_cnn.data.sampling import resume_point

__all__ = ["DeviceResidentLoader", "stack_dataset"]


def stack_dataset(dataset: Dataset, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Read every ``(x, y)`` sample of a dataset into two tensors ``[N, ...]`` (on the CPU).

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> x, y = stack_dataset(TensorDataset(torch.zeros(5, 1, 2, 2), torch.arange(5)))
        >>> x.shape, y.tolist()
        (torch.Size([5, 1, 2, 2]), [0, 1, 2, 3, 4])
    """
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    if not xs:
        raise ValueError("Expected a non-empty dataset, but it has no samples.")
    return torch.cat(xs), torch.cat(ys)


class DeviceResidentLoader:
    """Shuffled ``(x, y)`` batches drawn from tensors that stay on one device: no workers, no transfers.

    For training sets that fit in device memory (digits, MNIST, CIFAR scale). The tensors are moved to
    ``device`` once; each epoch draws a permutation from a generator seeded with ``seed + epoch`` (the
    same on every rank), so a run repeats exactly and a resumed run continues with the same order.
    Lightning calls :meth:`set_epoch` at the start of each epoch (through :attr:`sampler`, as it does for a
    ``DistributedSampler``); without it each pass over the loader advances the epoch by one.

    Under DDP each of ``world_size`` ranks takes every ``world_size``-th index of the permutation, from
    ``rank``: the ranks' shards are disjoint and together cover the epoch. Every rank must run the same
    number of steps, so ``drop_last=False`` pads the permutation with its first indices up to a multiple
    of ``world_size`` (as ``DistributedSampler`` does: a few samples are seen twice in that epoch), and
    ``drop_last=True`` drops the tail instead, both to whole shards and to whole batches.

    The batches go through the DataModule's ``on_after_batch_transfer`` as any others (normalization and
    batched augmentation on the device apply); per-sample augmentation of loader workers does not.

    Like :class:`~lightning_cnn.data.sampling.ResumableDataLoader`, it saves its place in the epoch
    (:meth:`state_dict`, written into checkpoints by Lightning), so a run resumed in the middle of an epoch
    continues with the rest of that epoch's batches; ``on_iter_start`` runs right before a pass produces its
    first batch (the DataModule restores the checkpoint's RNG state there).

    Args:
        x: inputs ``[N, ...]``.
        y: targets ``[N, ...]``.
        batch_size: samples per batch (per rank).
        shuffle: a new permutation every epoch; ``False`` keeps the order.
        drop_last: drop the last incomplete batch (and the tail that does not fill a shard per rank).
        seed: seed of the permutations.
        device: where the tensors live; ``None`` leaves them where they are.
        rank: this process's global rank.
        world_size: number of processes sharing the epoch.
        on_iter_start: a callable run when a pass starts, before its first batch.

    Raises:
        ValueError: for tensors of different lengths or an empty set, ``batch_size < 1``, or a rank
            outside ``[0, world_size)``.

    Example:
        >>> loader = DeviceResidentLoader(torch.arange(10.0), torch.arange(10), batch_size=4, seed=0)
        >>> [len(y) for _, y in loader]
        [4, 4, 2]
        >>> sorted(torch.cat([y for _, y in loader]).tolist()) == list(range(10))
        True
        >>> x, y = torch.arange(10.0), torch.arange(10)
        >>> shards = [DeviceResidentLoader(x, y, batch_size=8, rank=r, world_size=2) for r in (0, 1)]
        >>> sorted(torch.cat([y for s in shards for _, y in s]).tolist()) == list(range(10))
        True
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
        on_iter_start: Callable[[], None] | None = None,
    ) -> None:
        check_positive("world_size", world_size, integer=True)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected batch_size to be an int >= 1, but got {batch_size!r}.")
        if len(x) != len(y):
            raise ValueError(f"Expected x and y of the same length, but got {len(x)} and {len(y)}.")
        if len(x) == 0:
            raise ValueError("Expected a non-empty training set, but x has no samples.")
        if not 0 <= rank < world_size:
            raise ValueError(f"Expected rank to be in [0, {world_size}), but got {rank!r}.")
        if device is not None:
            x, y = x.to(device), y.to(device)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._epoch_set = False
        self.on_iter_start = on_iter_start
        self._skip = 0  # batches to leave out at the start of the next pass (a resumed epoch)
        self._state = {"epoch": 0, "batches": 0}  # the pass under way

    @classmethod
    def from_trainer(
        cls, dataset: Dataset, trainer: Any, batch_size: int, seed: int = 0, **kwargs: Any
    ) -> DeviceResidentLoader:
        """Stack a dataset onto the trainer's device, sharded by its ``global_rank`` and ``world_size``."""
        x, y = stack_dataset(dataset)
        return cls(
            x,
            y,
            batch_size,
            seed=seed,
            device=trainer.strategy.root_device,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            **kwargs,
        )

    @property
    def sampler(self) -> DeviceResidentLoader:
        """The loader itself: Lightning calls ``loader.sampler.set_epoch(epoch)`` at each epoch start."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` on the next pass; a pending resume of another epoch is dropped."""
        if int(epoch) != self.epoch:
            self._skip = 0
        self.epoch = int(epoch)
        self._epoch_set = True

    def _shard_size(self) -> int:
        n = len(self.x)
        return n // self.world_size if self.drop_last else -(-n // self.world_size)

    def __len__(self) -> int:
        size = self._shard_size()
        return size // self.batch_size if self.drop_last else -(-size // self.batch_size)

    def indices(self) -> torch.Tensor:
        """This rank's sample indices of the current epoch, in order (on the data's device)."""
        n = len(self.x)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        total = self._shard_size() * self.world_size
        if total > n:
            order = torch.cat([order, order[: total - n]])
        return order[:total][self.rank :: self.world_size].to(self.x.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator: nothing happens before the first batch is asked for, so an epoch set, or a state
        # loaded, after ``iter()`` still applies.
        if self.on_iter_start is not None:
            self.on_iter_start()
        order, epoch = self.indices(), self.epoch
        if not self._epoch_set:
            self.epoch += 1  # no set_epoch: the next pass draws the next epoch's order
        self._epoch_set = False
        start, self._skip = self._skip, 0
        self._state = {"epoch": epoch, "batches": start}
        for i in range(start, len(self)):
            batch = order[i * self.batch_size : (i + 1) * self.batch_size]
            self._state["batches"] = i + 1
            yield self.x.index_select(0, batch), self.y.index_select(0, batch)

    def state_dict(self) -> dict[str, Any]:
        """The epoch, the batches handed out in it and what the order depends on (primitives only)."""
        return {
            **self._state,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "num_samples": len(self.x),
            "world_size": self.world_size,
            "batches_per_epoch": len(self),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue after ``state_dict["batches"]`` batches of ``state_dict["epoch"]`` on the next pass.

        Raises:
            ValueError: when the state comes from a loader with another seed, batch size, length or rank count.
        """
        now = {
            "batch_size": self.batch_size,
            "seed": self.seed,
            "num_samples": len(self.x),
            "world_size": self.world_size,
        }
        epoch, batches = resume_point(state_dict, now, len(self))
        self.set_epoch(epoch)
        self._skip = batches
        self._state = {"epoch": epoch, "batches": batches}
