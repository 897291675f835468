"""Keep the weights of the best validation epoch, write them as ``best.ckpt`` and load them when ``fit`` ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, WeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightning_cnn._utils.validation import check_choice

__all__ = ["SnapshotBest", "Storage"]

Storage = Literal["cpu", "disk"]
_MODES = ("min", "max")
_STORAGES = ("cpu", "disk")


# ---------------------------------------------------------------- helpers shared by the callbacks of this package
def _is_fitting(trainer: pl.Trainer) -> bool:
    return bool(trainer.state.fn == "fit" and not trainer.sanity_checking)


def _checks_on_train_epoch_end(trainer: pl.Trainer, option: bool | None) -> bool:
    """Lightning's rule: decide at train-epoch end when validation runs exactly once per epoch."""
    if option is not None:
        return option
    return bool(trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1)


def _monitored(trainer: pl.Trainer, monitor: str, owner: str) -> torch.Tensor:
    """The monitored value as rank 0 sees it (so every rank decides alike); an error lists what was logged."""
    logs = trainer.callback_metrics
    if monitor not in logs:
        logged = ", ".join(f"'{key}'" for key in sorted(logs)) or "(nothing)"
        raise RuntimeError(
            f"{owner} monitors '{monitor}', but it was not logged. Logged keys: {logged}."
            f" Pass one of them as monitor=, or log '{monitor}' in validation_step."
        )
    value = float(logs[monitor].detach().float().squeeze().cpu())
    return torch.tensor(trainer.strategy.broadcast(value, src=0))


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def _validated_weights(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights that validation scored.

    Under :class:`~lightning.pytorch.callbacks.WeightAveraging` (SWA, EMA) validation runs the averaged
    weights, so those are the ones copied.
    """
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        average = getattr(callback, "_average_model", None) if isinstance(callback, WeightAveraging) else None
        if average is not None:
            return _cpu_copy(average.module.state_dict())
    return _cpu_copy(pl_module.state_dict())


def _save_atomically(trainer: pl.Trainer, path: Path) -> None:
    """Write a full Lightning checkpoint to ``path``: a temporary file in the same folder, then ``os.replace``.

    Call it on every rank (Lightning saves on rank 0 and waits for all).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(tmp)
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier("lightning_cnn.save_atomically")


def _load_weights(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _default_dir(trainer: pl.Trainer, dirpath: str | None) -> Path:
    return Path(dirpath) if dirpath is not None else Path(trainer.log_dir or trainer.default_root_dir) / "snapshots"


def _log_best(trainer: pl.Trainer, prefix: str, best_epoch: int, best_score: torch.Tensor) -> None:
    if trainer.is_global_zero:
        metrics = {f"{prefix}/best_epoch": float(best_epoch), f"{prefix}/best_score": float(best_score)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)


# ---------------------------------------------------------------- the callback
class SnapshotBest(Callback):
    """Keep the weights of the best validation epoch and load them into the module when ``fit`` ends.

    After every validation the monitored value (as rank 0 logged it, so all ranks agree) is compared with the
    best so far; only when it improves are the weights copied (to the CPU, or with ``storage="disk"`` only to
    the file) and ``best.ckpt`` is written atomically under ``dirpath`` (default: ``<log_dir>/snapshots``).
    The file is a full Lightning checkpoint: ``trainer.test(ckpt_path=...)``, ``lightning-cnn test
    --ckpt_path`` and ``torch.load(weights_only=True)`` read it. When ``fit`` ends (in ``teardown``, after
    every callback's ``on_train_end``) the best weights are loaded into the module, so ``trainer.test(model)``
    right after ``fit`` tests the best snapshot.

    Used with :class:`~lightning.pytorch.callbacks.WeightAveraging` (SWA, EMA): validation scores the averaged
    weights, so the snapshot holds the averaged weights of the best epoch, and they replace the final average
    that ``WeightAveraging`` copied in ``on_train_end``, whatever the order of the callbacks. Used with
    :class:`~lightning_cnn.EarlyStopping` ``(restore_best_weights=True)``: both restore in ``teardown`` in the
    order of ``trainer.callbacks``, the last one wins; with the same ``monitor`` and ``mode`` (and
    ``min_delta=0``) they hold the same weights.

    Args:
        monitor: logged metric to watch, e.g. ``"val/loss"``.
        mode: ``"min"`` or ``"max"``: whether a lower or a higher value is better.
        dirpath: folder of ``best.ckpt``; ``None``: ``snapshots/`` under the trainer's log folder.
        filename: file name without ``.ckpt``.
        storage: ``"cpu"`` keeps a copy of the weights in host memory; ``"disk"`` keeps them only in the file
            (for large models; with several nodes ``dirpath`` must be on a shared file system).
        check_on_train_epoch_end: decide at train-epoch end (``True``) or after each validation
            (``False``); ``None``: at train-epoch end when validation runs once per epoch. At train-epoch end a
            value the module logs in its own ``on_train_epoch_end`` is not there yet (Lightning runs that hook
            of callbacks before the module's): log it in a step or in validation.
        verbose: print a line when the best weights are restored.

    Attributes:
        best_score: best monitored value (``inf`` or ``-inf`` before the first validation).
        best_epoch: epoch (0-based) of the best value, ``-1`` before the first.
        best_model_path: path of ``best.ckpt`` once written, else ``""``.

    Raises:
        ValueError: for a bad ``mode`` or ``storage``.
        RuntimeError: during ``fit``, when ``monitor`` was not logged (the message lists what was).

    Example:
        >>> snap = SnapshotBest(monitor="val/acc", mode="max")
        >>> snap.best_epoch, snap.best_score
        (-1, tensor(-inf))
        >>> snap.state_key
        "SnapshotBest{'monitor': 'val/acc', 'mode': 'max'}"
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: Literal["min", "max"] = "min",
        dirpath: str | None = None,
        filename: str = "best",
        storage: Storage = "cpu",
        check_on_train_epoch_end: bool | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, _MODES)
        check_choice("storage", storage, _STORAGES)
        self.monitor = monitor
        self.mode = mode
        self.dirpath = dirpath
        self.filename = filename
        self.storage = storage
        self.verbose = verbose
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.best_score = torch.tensor(torch.inf if mode == "min" else -torch.inf)
        self.best_epoch = -1
        self.best_model_path = ""
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._verify_best_file = False  # after a resume: is best.ckpt still there? (decided in on_train_start)
        self._dir: Path | None = None

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def _improves(self, current: torch.Tensor) -> bool:
        if not torch.isfinite(current):
            return False
        return bool(current < self.best_score if self.mode == "min" else current > self.best_score)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._check_on_train_epoch_end = _checks_on_train_epoch_end(trainer, self._check_on_train_epoch_end)
            self._dir = _default_dir(trainer, self.dirpath)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._check_on_train_epoch_end and _is_fitting(trainer):
            self._check(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._check_on_train_epoch_end and _is_fitting(trainer):
            self._check(trainer, pl_module)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        current = _monitored(trainer, self.monitor, type(self).__name__)
        if not self._improves(current):
            return
        self.best_score = current
        self.best_epoch = trainer.current_epoch
        assert self._dir is not None  # set in setup
        path = self._dir / f"{self.filename}.ckpt"
        self.best_model_path = str(path.resolve())  # absolute: a run resumed from another folder finds it
        self._best_weights = _validated_weights(trainer, pl_module) if self.storage == "cpu" else None
        _save_atomically(trainer, path)
        _log_best(trainer, "snapshot_best", self.best_epoch, self.best_score)

    @property
    def best_weights(self) -> dict[str, torch.Tensor] | None:
        """The best weights as a CPU ``state_dict`` (read from ``best.ckpt`` with ``storage="disk"``), or ``None``."""
        if self._best_weights is not None:
            return self._best_weights
        if self.best_model_path and Path(self.best_model_path).is_file():
            return _load_weights(self.best_model_path)
        return None

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        weights = self.best_weights
        if weights is None:
            return
        pl_module.load_state_dict(weights)
        if self.verbose:
            rank_zero_info(
                f"SnapshotBest: restored the weights of epoch {self.best_epoch} ({self.monitor}={self.best_score:.4g})."
            )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_model_path": self.best_model_path}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_model_path = state_dict["best_model_path"]
        # The weights live in best.ckpt; read them from there (once) if this run keeps them in memory. Whether the
        # file is gone is decided in on_train_start, on rank 0 for every rank (the ranks must decide alike).
        self._best_weights = None
        self._verify_best_file = bool(self.best_model_path)
        if self.storage == "cpu" and self.best_model_path and Path(self.best_model_path).is_file():
            self._best_weights = _load_weights(self.best_model_path)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._verify_best_file:
            return
        self._verify_best_file = False
        exists = trainer.strategy.broadcast(Path(self.best_model_path).is_file(), src=0)
        if exists:
            return
        rank_zero_warn(
            f"SnapshotBest: the best checkpoint of the resumed run, {self.best_model_path} (epoch"
            f" {self.best_epoch}, {self.monitor}={float(self.best_score):.4g}), is missing, so its weights cannot"
            " be restored. The best epoch is chosen again from the epochs run from here on."
        )
        self.best_score = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)
        self.best_epoch, self.best_model_path, self._best_weights = -1, "", None
