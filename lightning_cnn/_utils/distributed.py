"""Gathering tensors over the ranks of a LightningModule's strategy (one process: a stack of one)."""

from __future__ import annotations

from typing import Any, Protocol

import torch


class _Gathers(Protocol):
    """What the gathers need of a LightningModule (or Fabric-style object): ``all_gather``, a device, a trainer."""

    @property
    def device(self) -> torch.device: ...
    @property
    def trainer(self) -> Any: ...

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any: ...


def gather(pl_module: _Gathers, tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor``, stacked: ``[world_size, *tensor.shape]`` (a collective under DDP)."""
    gathered = pl_module.all_gather(tensor.to(pl_module.device))
    assert isinstance(gathered, torch.Tensor)
    return gathered if pl_module.trainer.world_size > 1 else gathered.unsqueeze(0)


def gather_uneven(pl_module: _Gathers, tensor: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order, when the ranks hold ``counts`` rows each."""
    pad = max(counts) - tensor.shape[0]
    if pad:
        tensor = torch.cat([tensor, tensor.new_zeros((pad, *tensor.shape[1:]))])
    gathered = gather(pl_module, tensor)
    return torch.cat([gathered[rank, :n] for rank, n in enumerate(counts)])
