"""The optimizer and scheduler of a classifier, built by name from its hyperparameters."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.optim import Optimizer

from lightning_cnn._utils.training_only import fallback_message, runs_without_validation, training_metric
from lightning_cnn.optim import LENGTH_OPTIONS, build_optimizer, build_scheduler

__all__ = ["ConfiguresOptimizers"]

if TYPE_CHECKING:  # the mixin's methods run on a LightningModule
    import lightning.pytorch as pl

    _Module = pl.LightningModule
else:
    _Module = object


class ConfiguresOptimizers(_Module):
    """Lightning's ``configure_optimizers`` from the hyperparameters of :class:`~lightning_cnn.models.ClassifierModule`.

    A mixin of the LightningModule: it reads ``self.hparams`` (``optimizer``, ``lr``, ``weight_decay``,
    ``decay_all``, ``optimizer_options``, ``scheduler``, ``scheduler_options``, ``warmup_epochs``) and
    ``self.trainer`` (the length of training), and builds the optimizer with its parameter groups and the
    scheduler over them.
    """

    def create_optimizer(self) -> Optimizer:
        """Build the optimizer of :meth:`configure_optimizers`, with all its parameter groups.

        Override it to change the parameter groups (per-group learning rates, ...): the scheduler is built from
        the optimizer it returns, so it schedules every group.
        """
        hp = self.hparams
        return build_optimizer(
            hp["optimizer"],
            self,
            lr=hp["lr"],
            weight_decay=hp["weight_decay"],
            decay_all=hp["decay_all"],
            options=hp["optimizer_options"],
        )

    def _training_length(self) -> tuple[int, int, int]:
        """``(epochs, optimizer steps per epoch, optimizer steps)`` of this fit, from the Trainer's limits.

        The steps are Lightning's ``estimated_stepping_batches`` (``max_steps``, ``limit_train_batches`` and
        ``accumulate_grad_batches`` included); the epochs follow from them and the batches of an epoch.

        Raises:
            ValueError: when the scheduler needs the length of training and the Trainer sets none
                (``max_time`` alone, or ``max_epochs=-1`` without ``max_steps``).
        """
        hp, trainer = self.hparams, self.trainer
        name = hp["scheduler"]
        total = trainer.estimated_stepping_batches
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        if math.isfinite(total) and total >= 1:
            total = int(total)
            if trainer.train_dataloader is None:  # max_steps with max_epochs=-1: the estimate did not load the data
                trainer.fit_loop.setup_data()
            batches = trainer.num_training_batches
            if math.isfinite(batches) and batches > 0:
                per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
            else:  # an iterable dataset without a length: spread the steps over the epochs the Trainer allows
                per_epoch = math.ceil(total / (max_epochs or 1))
            return max(math.ceil(total / per_epoch), 1), per_epoch, total
        if total == 0:
            return 1, 1, 1  # no training step (limit_train_batches=0)
        if max_epochs is not None and name != "one_cycle":
            return max_epochs, 1, max_epochs  # epochs of unknown length: epoch-wise schedulers need only their count
        option = LENGTH_OPTIONS.get(name)
        if option is not None and option not in (hp["scheduler_options"] or {}):
            need = "max_steps" if max_epochs is not None else "max_epochs or max_steps"  # epochs of unknown length
            raise ValueError(
                f"Expected the Trainer to set {need} for scheduler={name!r}, which sizes its schedule by the length"
                f" of training (or pass scheduler_options {option!r}), but got max_epochs={trainer.max_epochs!r}"
                f" and max_steps={trainer.max_steps!r}."
            )
        return 1, 1, 1  # the scheduler does not use the length

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = self.create_optimizer()
        if hp["scheduler"] is None:
            return optimizer
        epochs, per_epoch, total = self._training_length()
        scheduler = build_scheduler(
            hp["scheduler"],
            optimizer,
            max_epochs=epochs,
            steps_per_epoch=per_epoch,
            total_steps=total,
            warmup_epochs=hp["warmup_epochs"],
            monitor=self._plateau_monitor() if hp["scheduler"] == "plateau" else "val/loss",
            options=hp["scheduler_options"],
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _plateau_monitor(self) -> str:
        """``val/loss``, or ``train/loss`` when this fit validates nothing (``val_fraction=0``), said once."""
        monitor = "val/loss"
        reason = runs_without_validation(getattr(self, "_trainer", None))
        if reason is None:
            return monitor
        replacement = training_metric(monitor)
        assert replacement is not None
        rank_zero_info(fallback_message("scheduler='plateau'", monitor, replacement, reason))
        return replacement
