"""Lightning's early stopping, plus restoring the best weights and a first epoch to decide from (as in Keras)."""

from __future__ import annotations

import io
import re
import weakref
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import early_stopping as _lightning_early_stopping
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightning_cnn._utils.io import load_checkpoint_file, save_checkpoint_file
from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.callbacks.best_weights import (
    MODE_NAMES,
    Mode,
    fall_back_to_training,
    log_best,
    rank_zero_value,
    validated_weights,
)

__all__ = ["EarlyStopping", "EarlyStoppingArgumentError"]

_Reason = _lightning_early_stopping.EarlyStoppingReason


class EarlyStoppingArgumentError(ValueError, MisconfigurationException):
    """A bad argument of :class:`EarlyStopping`: a ``ValueError``, and Lightning's ``MisconfigurationException``.

    Code written for Lightning's ``EarlyStopping`` catches ``MisconfigurationException``; ours catches either.

    Example:
        >>> try:
        ...     EarlyStopping(patience=-1)
        ... except MisconfigurationException as err:
        ...     print(err)
        Expected patience to be >= 0, but got -1.
    """


class EarlyStopping(_lightning_early_stopping.EarlyStopping):
    """Stop training when a monitored metric stops improving, then restore the weights of its best epoch.

    Every option of :class:`lightning.pytorch.callbacks.EarlyStopping` works as there. Added:

    - ``restore_best_weights``: the weights are copied to the CPU each time the monitored value improves
      (never per step) and loaded into the module when ``fit`` ends, whether training stopped early or ran
      out of epochs (Keras 3). Loading happens in ``teardown``, after every callback's ``on_train_end``;
      under :class:`~lightning.pytorch.callbacks.WeightAveraging` the copied weights are the averaged ones
      that validation scored. With :class:`~lightning_cnn.SnapshotBest` also restoring, the one later in
      ``trainer.callbacks`` wins.
    - ``start_from_epoch``: before this epoch (0-based) nothing is recorded and nothing is decided: no best
      value, no patience counting, no stopping (as in Keras).
    - ``best_epoch`` and ``best_score``, also logged to the trainer's loggers as ``early_stopping/best_epoch``
      and ``early_stopping/best_score``.

    Every rank decides on the value rank 0 logged (broadcast), so all ranks stop at the same epoch and keep
    the same weights even when the metric is not synced. The state is saved in checkpoints, so a resumed run
    decides as an uninterrupted one. The best weights are not copied into every checkpoint: the first
    checkpoint saved after a new best writes them once (rank 0, atomically) to
    ``early_stopping_best-<monitor>-<mode>.pt`` in the folder of the trainer's ``ModelCheckpoint`` (else the
    trainer's log folder), and the checkpoint's state holds that file's path and the best epoch and step; a
    resumed run reads the weights back from it (with several nodes, on a shared file system) and names that
    same file until a better epoch comes. A state taken outside a Trainer carries the weights as the bytes of
    a ``torch.save`` (``best_weights_bytes``), read back with ``weights_only=True``. Either way the state holds
    only numbers, strings, bytes and a one-element ``best_score``, so two states compare with ``==`` as
    Lightning's do.

    Lightning hooks overridden besides the public ones: ``_should_skip_check`` (``start_from_epoch``) and
    ``_evaluate_stopping_criteria`` (rank 0's value, the best epoch and its weights).

    Args:
        monitor: logged metric to watch.
        min_delta: smallest change that counts as an improvement.
        patience: validation checks without improvement before stopping.
        verbose: log the decisions.
        mode: ``"min"`` or ``"max"``.
        strict: raise when ``monitor`` was not logged (the message lists the logged keys).
        check_finite: stop when the metric becomes NaN or infinite.
        stopping_threshold: stop as soon as the metric reaches this value.
        divergence_threshold: stop as soon as the metric is worse than this value.
        check_on_train_epoch_end: decide at train-epoch end rather than after validation.
        log_rank_zero_only: log only on rank 0.
        restore_best_weights: load the best epoch's weights into the module when ``fit`` ends.
        start_from_epoch: first epoch (0-based) that is monitored.

    Attributes:
        best_epoch: epoch (0-based) of the best value, ``-1`` before the first.
        best_score: best monitored value.
        stopped_epoch: epoch at which training was stopped, ``0`` if it was not.

    Raises:
        EarlyStoppingArgumentError: (a ``ValueError`` and a ``MisconfigurationException``) for a bad ``mode``, a
            negative ``patience``, ``start_from_epoch`` or ``min_delta``.
        RuntimeError: during ``fit``, when ``monitor`` was not logged and ``strict``.

    Example:
        >>> stop = EarlyStopping(patience=5, start_from_epoch=2)
        >>> stop.monitor, stop.mode, stop.restore_best_weights, stop.best_epoch
        ('val/loss', 'min', True, -1)
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: Mode = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
    ) -> None:
        try:
            check_choice("mode", mode, MODE_NAMES)
            for name, value in (("patience", patience), ("start_from_epoch", start_from_epoch)):
                check_positive(name, value, allow_zero=True)
            check_positive("min_delta", min_delta, allow_zero=True)
        except ValueError as err:
            raise EarlyStoppingArgumentError(str(err)) from None
        # Lightning's own arguments, passed on unchanged
        options: dict[str, Any] = {"min_delta": min_delta, "patience": patience, "verbose": verbose, "mode": mode}
        options |= {"strict": strict, "check_finite": check_finite, "stopping_threshold": stopping_threshold}
        options |= {"divergence_threshold": divergence_threshold, "check_on_train_epoch_end": check_on_train_epoch_end}
        super().__init__(monitor=monitor, log_rank_zero_only=log_rank_zero_only, **options)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.best_epoch = -1
        self._best_step = -1
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._trainer: weakref.ReferenceType[pl.Trainer] | None = None
        self._run_dir: Path | None = None  # where the weights file goes without a ModelCheckpoint
        self._written: tuple[str, int, int] | None = None  # (path, epoch, step) of the weights file last written

    @property
    def best_weights(self) -> dict[str, torch.Tensor] | None:
        """CPU ``state_dict`` of the best epoch (``None`` before it, or without ``restore_best_weights``)."""
        return self._best_weights

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        replacement = fall_back_to_training(trainer, self.monitor, type(self).__name__) if stage == "fit" else None
        if replacement is not None:  # no validation: decide on the training metric at each epoch's end
            self.monitor, self._check_on_train_epoch_end = replacement, True
        if stage == "fit":
            self._trainer = weakref.ref(trainer)
            self._run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # on every rank (a collective)

    @override
    def _should_skip_check(self, trainer: pl.Trainer) -> bool:
        return super()._should_skip_check(trainer) or trainer.current_epoch < self.start_from_epoch

    @override
    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        trainer = self._trainer() if self._trainer is not None else None
        if trainer is None:  # called outside a Trainer: Lightning's decision alone
            return super()._evaluate_stopping_criteria(current)
        current = rank_zero_value(trainer, current)
        improved = bool(self.monitor_op(current - self.min_delta, self.best_score.to(current.device)))
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if improved and self.stopping_reason == _Reason.STOPPING_THRESHOLD:
            # The base class stops at the threshold without adopting the value; it is the best all the same.
            self.best_score, self.wait_count = current, 0
        if self.best_score is current:  # adopted as the new best
            self.best_epoch, self._best_step = trainer.current_epoch, trainer.global_step
            if self.restore_best_weights:
                self._best_weights = validated_weights(trainer, trainer.lightning_module)
            log_best(trainer, "early_stopping", self.best_epoch, self.best_score)
        return should_stop, reason

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.restore_best_weights or self._best_weights is None:
            return
        pl_module.load_state_dict(self._best_weights)
        if self.verbose:
            rank_zero_info(
                f"EarlyStopping: restored the weights of epoch {self.best_epoch}"
                f" ({self.monitor}={self.best_score:.4g})."
            )

    def _weights_file(self, trainer: pl.Trainer) -> Path:
        """Beside the trainer's checkpoints (else in its log folder), one file per monitor and mode."""
        folder = getattr(trainer.checkpoint_callback, "dirpath", None) or self._run_dir or trainer.default_root_dir
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.monitor}-{self.mode}")
        return (Path(folder) / f"early_stopping_best-{name}.pt").resolve()

    def _save_best_weights(self) -> dict[str, Any]:
        """The state that brings the best weights back: their file's path, written here once per best."""
        trainer = self._trainer() if self._trainer is not None else None
        if self._best_weights is None:
            return {}
        if trainer is None:  # no run folder to write to: the weights travel in the state, as bytes (== compares)
            buffer = io.BytesIO()
            torch.save(self._best_weights, buffer)
            return {"best_weights_bytes": buffer.getvalue()}
        if self._written is None or self._written[1:] != (self.best_epoch, self._best_step):
            path = str(self._weights_file(trainer))
            if trainer.is_global_zero:  # the ranks hold the same weights (rank 0 decided)
                file = {"epoch": self.best_epoch, "step": self._best_step, "state_dict": self._best_weights}
                save_checkpoint_file(file, path)
            self._written = (path, self.best_epoch, self._best_step)
        # the file that holds this best: the one written, or the one a resumed run read it from
        return {"best_weights_path": self._written[0], "best_step": self._best_step}

    def _load_best_weights(self, state_dict: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        if "best_weights_bytes" in state_dict:  # saved outside a Trainer
            return torch.load(io.BytesIO(state_dict["best_weights_bytes"]), weights_only=True)
        if "best_weights" in state_dict:  # saved outside a Trainer by an earlier version
            return state_dict["best_weights"]
        path = state_dict.get("best_weights_path")
        if not path or not self.restore_best_weights:
            return None
        saved = load_checkpoint_file(path) if Path(path).is_file() else None
        if saved is not None and (saved["epoch"], saved["step"]) == (self.best_epoch, self._best_step):
            self._written = (path, self.best_epoch, self._best_step)
            return saved["state_dict"]
        found = "is missing" if saved is None else f"holds epoch {saved['epoch']} (step {saved['step']})"
        rank_zero_warn(
            f"EarlyStopping: the best weights of the resumed run (epoch {self.best_epoch}, step {self._best_step}),"
            f" {path}, {found}, so they cannot be restored unless a better epoch comes."
        )
        return None

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_epoch": self.best_epoch, **self._save_best_weights()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch", -1)
        self._best_step = state_dict.get("best_step", -1)
        self._best_weights = self._load_best_weights(state_dict)
