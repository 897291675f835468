"""Snapshot ensembles (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.callbacks.best_weights import (
    STORAGE_NAMES,
    Storage,
    cpu_copy,
    default_dir,
    load_weights,
    save_checkpoint_atomically,
)

__all__ = ["SnapshotEnsemble", "cyclic_cosine_lr"]


def cyclic_cosine_lr(step: int, total_steps: int, cycles: int, lr_max: float, lr_min: float = 0.0) -> float:
    """Learning rate of step ``step`` (0-based) of a cosine schedule restarted ``cycles`` times.

    Cycle ``k`` spans the steps ``[round(k T / M), round((k + 1) T / M))``; in it the rate falls from ``lr_max``
    to ``lr_min`` along half a cosine, then jumps back to ``lr_max`` at the next cycle.

    Example:
        >>> [round(cyclic_cosine_lr(s, total_steps=8, cycles=2, lr_max=1.0), 3) for s in range(8)]
        [1.0, 0.854, 0.5, 0.146, 1.0, 0.854, 0.5, 0.146]
    """
    step = min(max(step, 0), total_steps - 1)
    cycle = min(step * cycles // total_steps, cycles - 1)
    while cycle + 1 < cycles and step >= round((cycle + 1) * total_steps / cycles):
        cycle += 1
    while cycle > 0 and step < round(cycle * total_steps / cycles):
        cycle -= 1
    start, end = round(cycle * total_steps / cycles), round((cycle + 1) * total_steps / cycles)
    position = (step - start) / max(end - start, 1)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * position))


class SnapshotEnsemble(Callback):
    """Cyclic cosine learning rate with ``cycles`` restarts; the weights at the end of each cycle are kept.

    Before every training batch the callback sets the learning rate of every param group of every
    optimizer from :func:`cyclic_cosine_lr` over all of training (``trainer.estimated_stepping_batches``
    steps, cut into ``cycles`` equal cycles): each cycle anneals from ``lr_max`` (default: each group's
    learning rate when training starts) to ``lr_min``, then restarts. After the last step of a cycle the
    weights are copied: kept on the CPU (``storage="cpu"``) and, when ``dirpath`` is given or
    ``storage="disk"``, written atomically as full Lightning checkpoints ``snapshot_{i}.ckpt``
    (``i`` from 0). :attr:`snapshots` lists them as ``state_dict`` s and :attr:`snapshot_paths` as files:
    the members of an ensemble evaluation. The module's own LR scheduler, if any, is overridden every
    step (a warning says so). Snapshots hold the training weights, not those of a ``WeightAveraging``.

    Args:
        cycles: number of cycles ``M``, and of snapshots.
        lr_max: learning rate at the start of each cycle; ``None``: each param group's own.
        lr_min: learning rate at the end of each cycle.
        dirpath: folder of the snapshot files; ``None``: none written with ``storage="cpu"``, and
            ``snapshots/`` under the trainer's log folder with ``storage="disk"``.
        storage: ``"cpu"`` keeps the snapshots in host memory; ``"disk"`` only in the files.
        verbose: log each snapshot.

    Raises:
        ValueError: for ``cycles < 1``, a negative rate, ``lr_min > lr_max``, a bad ``storage``, or (when
            training starts) fewer training steps than cycles or an unbounded training length.

    Example:
        >>> ens = SnapshotEnsemble(cycles=5, lr_max=0.1)
        >>> ens.cycles, ens.snapshots
        (5, [])
    """

    def __init__(
        self,
        cycles: int = 5,
        lr_max: float | None = None,
        lr_min: float = 0.0,
        dirpath: str | None = None,
        storage: Storage = "cpu",
        verbose: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"Expected cycles to be an int >= 1, but got {cycles!r}.")
        if lr_max is not None:
            check_positive("lr_max", lr_max)
        check_positive("lr_min", lr_min, allow_zero=True)
        if lr_max is not None and lr_min > lr_max:
            raise ValueError(f"Expected lr_min <= lr_max, but got lr_min={lr_min!r} and lr_max={lr_max!r}.")
        check_choice("storage", storage, STORAGE_NAMES)
        self.cycles, self.lr_max, self.lr_min = cycles, lr_max, lr_min
        self.dirpath, self.storage, self.verbose = dirpath, storage, verbose
        self._base_lrs: list[list[float]] = []
        self._total_steps = 0
        self._snapshots: list[dict[str, torch.Tensor]] = []
        self._paths: list[str] = []
        self._taken = 0
        self._dir: Path | None = None

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(cycles=self.cycles, lr_max=self.lr_max, lr_min=self.lr_min)

    @property
    def snapshots(self) -> list[dict[str, torch.Tensor]]:
        """The snapshots taken so far, oldest first, as CPU ``state_dict`` s (read from the files on ``"disk"``)."""
        if len(self._snapshots) == self._taken:
            return list(self._snapshots)
        return [load_weights(path) for path in self._paths]

    @property
    def snapshot_paths(self) -> list[str]:
        """The snapshot files written so far (empty when none are written)."""
        return list(self._paths)

    def _writes_files(self) -> bool:
        return self.dirpath is not None or self.storage == "disk"

    def _boundary(self, k: int) -> int:
        """Global step after which snapshot ``k`` (0-based) is taken."""
        return round((k + 1) * self._total_steps / self.cycles)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._writes_files():
            self._dir = default_dir(trainer, self.dirpath)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("SnapshotEnsemble needs a bounded training length: set max_epochs or max_steps.")
        if int(total) < self.cycles:
            raise ValueError(f"SnapshotEnsemble needs at least cycles={self.cycles} training steps, but got {total}.")
        self._total_steps = int(total)
        if not self._base_lrs:  # a resumed run keeps the rates it started with
            self._base_lrs = [[float(group["lr"]) for group in opt.param_groups] for opt in trainer.optimizers]
        if trainer.lr_scheduler_configs:
            rank_zero_warn(
                "SnapshotEnsemble sets the learning rate every step; the module's LR scheduler is overridden."
            )

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        for opt, base in zip(trainer.optimizers, self._base_lrs, strict=True):
            for group, lr in zip(opt.param_groups, base, strict=True):
                top = self.lr_max if self.lr_max is not None else lr
                group["lr"] = cyclic_cosine_lr(step, self._total_steps, self.cycles, top, min(self.lr_min, top))

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._taken >= self.cycles or trainer.global_step < self._boundary(self._taken):
            return
        if self.storage == "cpu":
            self._snapshots.append(cpu_copy(pl_module.state_dict()))
        index = self._taken
        self._taken += 1
        if self._dir is not None:
            path = self._dir / f"snapshot_{index}.ckpt"
            self._paths.append(str(path))
            save_checkpoint_atomically(trainer, path)
        if self.verbose:
            rank_zero_info(f"SnapshotEnsemble: snapshot {index} taken after step {trainer.global_step}.")

    @override
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "base_lrs": self._base_lrs,
            "taken": self._taken,
            "paths": list(self._paths),
            "snapshots": [],
        }
        if self.storage == "cpu" and not self._paths:  # no files to read them back from
            state["snapshots"] = list(self._snapshots)
        return state

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._base_lrs = [list(base) for base in state_dict["base_lrs"]]
        self._taken = state_dict["taken"]
        self._paths = list(state_dict["paths"])
        self._snapshots = list(state_dict["snapshots"])
        if self.storage == "cpu" and not self._snapshots and self._paths:
            self._snapshots = [load_weights(path) for path in self._paths]
