"""The weights of a best epoch: how the callbacks that keep them decide, copy, write, read and log them.

:class:`~lightning_cnn.SnapshotBest`, :class:`~lightning_cnn.EarlyStopping` and
:class:`~lightning_cnn.SnapshotEnsemble` share these: the monitored value as rank 0 logged it (so every rank
decides alike), a CPU copy of the weights validation scored, atomic checkpoint files and their default folder.

Lightning internals read here (no public API gives them): ``WeightAveraging._average_model``, the averaged
module validation runs with, so the copied weights are the ones that were scored.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal, get_args

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from lightning_cnn._utils.io import load_checkpoint_file
from lightning_cnn._utils.training_only import fallback_message, runs_without_validation, training_metric

__all__ = [
    "MODE_NAMES",
    "STORAGE_NAMES",
    "Mode",
    "Storage",
    "checks_on_train_epoch_end",
    "cpu_copy",
    "default_dir",
    "fall_back_to_training",
    "is_fitting",
    "load_weights",
    "log_best",
    "monitored_value",
    "rank_zero_value",
    "save_checkpoint_atomically",
    "validated_weights",
]

Mode = Literal["min", "max"]
MODE_NAMES: tuple[str, ...] = get_args(Mode)
Storage = Literal["cpu", "disk"]
STORAGE_NAMES: tuple[str, ...] = get_args(Storage)


def is_fitting(trainer: pl.Trainer) -> bool:
    """Whether ``trainer`` is in ``fit`` and past the sanity check: the only time a best epoch is chosen."""
    return bool(trainer.state.fn == "fit" and not trainer.sanity_checking)


def fall_back_to_training(trainer: pl.Trainer, monitor: str, owner: str) -> str | None:
    """The training metric to watch instead of ``monitor`` when this fit validates nothing (said once), else ``None``.

    Call it in ``setup``: after the DataModule's (whose split it reads), before a checkpoint's state is restored
    (a state key that holds the monitor then matches the one the fallback saved).
    """
    reason = runs_without_validation(trainer)
    replacement = training_metric(monitor) if reason is not None else None
    if reason is None or replacement is None:
        return None
    rank_zero_info(fallback_message(owner, monitor, replacement, reason))
    return replacement


def checks_on_train_epoch_end(trainer: pl.Trainer, option: bool | None) -> bool:
    """``option``, or Lightning's rule when ``None``: decide at train-epoch end when validation runs once per epoch."""
    if option is not None:
        return option
    return bool(trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1)


def rank_zero_value(trainer: pl.Trainer, value: torch.Tensor | float) -> torch.Tensor:
    """``value`` as rank 0 holds it, on every rank (a collective under DDP), as a CPU float scalar."""
    number = float(value.detach().float().squeeze().cpu()) if isinstance(value, torch.Tensor) else float(value)
    return torch.tensor(trainer.strategy.broadcast(number, src=0))


def monitored_value(trainer: pl.Trainer, monitor: str, owner: str) -> torch.Tensor:
    """The logged value of ``monitor`` as rank 0 sees it, so every rank decides alike.

    Raises:
        RuntimeError: when ``monitor`` was not logged, naming ``owner`` and listing what was.
    """
    logs = trainer.callback_metrics
    if monitor not in logs:
        logged = ", ".join(f"'{key}'" for key in sorted(logs)) or "(nothing)"
        raise RuntimeError(
            f"{owner} monitors '{monitor}', but it was not logged. Logged keys: {logged}."
            f" Pass one of them as monitor=, or log '{monitor}' in validation_step."
        )
    return rank_zero_value(trainer, logs[monitor])


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached copy of a ``state_dict`` in host memory.

    Example:
        >>> weights = {"w": torch.ones(2, requires_grad=True)}
        >>> copy = cpu_copy(weights)
        >>> copy["w"].requires_grad, copy["w"] is weights["w"]
        (False, False)
    """
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def validated_weights(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights that validation scored.

    Under :class:`~lightning.pytorch.callbacks.WeightAveraging` (SWA, EMA) validation runs the averaged
    weights, so those are the ones copied.
    """
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        average = getattr(callback, "_average_model", None) if isinstance(callback, WeightAveraging) else None
        if average is not None:
            return cpu_copy(average.module.state_dict())
    return cpu_copy(pl_module.state_dict())


def save_checkpoint_atomically(trainer: pl.Trainer, path: Path) -> None:
    """Write a full Lightning checkpoint to ``path``: a temporary file in the same folder, then ``os.replace``.

    A reader (or a crash at any moment) sees the previous file or the complete new one. Call it on every rank
    (Lightning saves on rank 0 and waits for all).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # only rank 0 writes: its own name, no other run's
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        trainer.save_checkpoint(tmp)
    except BaseException:
        if trainer.is_global_zero:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier("lightning_cnn.save_atomically")


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint file, read on the CPU with ``weights_only=True``."""
    return load_checkpoint_file(path)["state_dict"]


def default_dir(trainer: pl.Trainer, dirpath: str | None) -> Path:
    """``dirpath``, or ``snapshots/`` under the trainer's log folder (its ``default_root_dir`` without a logger)."""
    return Path(dirpath) if dirpath is not None else Path(trainer.log_dir or trainer.default_root_dir) / "snapshots"


def log_best(trainer: pl.Trainer, prefix: str, best_epoch: int, best_score: torch.Tensor) -> None:
    """Log ``{prefix}/best_epoch`` and ``{prefix}/best_score`` to every logger of the trainer (rank 0)."""
    if trainer.is_global_zero:
        metrics = {f"{prefix}/best_epoch": float(best_epoch), f"{prefix}/best_score": float(best_score)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
