"""Lightning's early stopping, plus restoring the best weights and a first epoch to decide from (as in Keras)."""

from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import early_stopping as _lightning_early_stopping
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from typing_extensions import override

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.callbacks.snapshot import _log_best, _monitored, _validated_weights

__all__ = ["EarlyStopping"]


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
    the same weights even when the metric is not synced. The state (including the best weights) is saved
    in checkpoints, so a resumed run decides as an uninterrupted one.

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
        ValueError: for a bad ``mode``, a negative ``patience`` or ``start_from_epoch``.
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
        mode: Literal["min", "max"] = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
    ) -> None:
        check_choice("mode", mode, tuple(self.mode_dict))
        check_positive("patience", patience, allow_zero=True)
        check_positive("start_from_epoch", start_from_epoch, allow_zero=True)
        check_positive("min_delta", min_delta, allow_zero=True)
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            strict=strict,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            check_on_train_epoch_end=check_on_train_epoch_end,
            log_rank_zero_only=log_rank_zero_only,
        )
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.best_epoch = -1
        self._best_weights: dict[str, torch.Tensor] | None = None

    @property
    def best_weights(self) -> dict[str, torch.Tensor] | None:
        """CPU ``state_dict`` of the best epoch (``None`` before it, or without ``restore_best_weights``)."""
        return self._best_weights

    @override
    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        if trainer.current_epoch < self.start_from_epoch or trainer.fast_dev_run:  # type: ignore[attr-defined]
            return
        if not self._validate_condition_metric(trainer.callback_metrics):
            return  # not strict and not logged: Lightning's behaviour (a warning when verbose)
        current = _monitored(trainer, self.monitor, type(self).__name__)
        improved = bool(self.monitor_op(current - self.min_delta, self.best_score.to(current.device)))
        should_stop, reason = self._evaluate_stopping_criteria(current)
        if improved and self.stopping_reason == _lightning_early_stopping.EarlyStoppingReason.STOPPING_THRESHOLD:
            # The base class stops at the threshold without adopting the value; it is the best all the same.
            self.best_score, self.wait_count = current, 0
        if self.best_score is current:  # the base class adopted it as the new best
            self.best_epoch = trainer.current_epoch
            if self.restore_best_weights:
                self._best_weights = _validated_weights(trainer, trainer.lightning_module)
            _log_best(trainer, "early_stopping", self.best_epoch, self.best_score)
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

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

    @override
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["best_epoch"] = self.best_epoch
        state["best_weights"] = self._best_weights
        return state

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch", -1)
        self._best_weights = state_dict.get("best_weights")
