"""Gathering tensors over the ranks of a strategy (one process: a stack of one); leaving the group at exit."""

from __future__ import annotations

from typing import Any, Protocol

import torch


def leave_process_group() -> None:
    """Destroy the default process group this process joined, if it joined one; otherwise do nothing.

    Left to the interpreter's exit, Gloo's worker threads can still hold finished work whose tensors are freed while
    the interpreter is torn down, which aborts a process after a run that succeeded ("terminate called without an
    active exception"). ``import lightning_cnn`` registers this to run at exit (Lightning does so for NCCL only), so
    the workers ``strategy="ddp_spawn"`` starts and the ranks torchrun starts (``lightning-cnn`` among them) leave
    the group while the interpreter is still whole.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


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
