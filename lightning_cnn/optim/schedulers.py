"""Learning-rate schedulers by name, as Lightning ``lr_scheduler`` configs, with an optional linear warm-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lightning_cnn._utils.validation import check_choice, check_positive, check_range

__all__ = [
    "LENGTH_OPTIONS",
    "SCHEDULERS",
    "SCHEDULER_NAMES",
    "SchedulerName",
    "WarmupReduceLROnPlateau",
    "build_scheduler",
]

SchedulerName = Literal["step", "multistep", "exponential", "cosine", "cosine_warm_restarts", "one_cycle", "plateau"]
SCHEDULER_NAMES: tuple[str, ...] = get_args(SchedulerName)
SCHEDULERS = SCHEDULER_NAMES

#: The option that sets each scheduler's length; without it, the length comes from the length of training.
LENGTH_OPTIONS: dict[str, str] = {
    "step": "step_size",
    "multistep": "milestones",
    "cosine": "T_max",
    "cosine_warm_restarts": "T_0",
    "one_cycle": "total_steps",
}


class WarmupReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` after a linear warm-up of ``warmup_epochs`` epochs.

    The learning rate starts at ``start_factor`` times each group's rate and reaches it after ``warmup_epochs``
    calls of :meth:`step` (as :class:`~torch.optim.lr_scheduler.LinearLR` does); the metrics of those epochs are
    not watched. Then the plateau logic runs unchanged. Being a ``ReduceLROnPlateau``, Lightning passes it the
    monitored metric; its state (warm-up progress included) is in :meth:`state_dict`.

    Example:
        >>> from torch import nn
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> sched = WarmupReduceLROnPlateau(opt, warmup_epochs=2, patience=0, factor=0.5, threshold=1.0)
        >>> lrs = [opt.param_groups[0]["lr"]]
        >>> for loss in (1.0, 1.0, 1.0, 1.0):
        ...     sched.step(loss)
        ...     lrs.append(opt.param_groups[0]["lr"])
        >>> [round(lr, 6) for lr in lrs]
        [0.001, 0.0505, 0.1, 0.05, 0.025]
    """

    def __init__(self, optimizer: Optimizer, warmup_epochs: int, start_factor: float = 0.01, **kwargs: Any) -> None:
        check_positive("warmup_epochs", warmup_epochs)
        check_range("start_factor", start_factor, 0, 1, include_low=False)
        super().__init__(optimizer, **kwargs)
        self.warmup_epochs = warmup_epochs
        self.start_factor = start_factor
        self.warmup_done = 0
        self.target_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self._set_warmup_lrs()

    def _set_warmup_lrs(self) -> None:
        factor = self.start_factor + (1.0 - self.start_factor) * self.warmup_done / self.warmup_epochs
        for group, target in zip(self.optimizer.param_groups, self.target_lrs, strict=True):
            group["lr"] = target * factor
        # Private: what torch's get_last_lr() returns, so the warm-up's rates are reported (no public setter).
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        if self.warmup_done < self.warmup_epochs:
            self.warmup_done += 1
            self._set_warmup_lrs()
            return
        super().step(metrics, epoch)


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    monitor: str = "val/loss",
    options: Mapping[str, Any] | None = None,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """Build a learning-rate scheduler by name, as a Lightning ``lr_scheduler`` config.

    ``"one_cycle"`` steps every batch; the others step every epoch. ``warmup_epochs`` puts a linear
    warm-up (from 1% of the learning rate) in front of any scheduler but ``"one_cycle"``, which has its own
    (``pct_start``); in front of ``"plateau"`` it is :class:`WarmupReduceLROnPlateau`.

    Args:
        name: one of :data:`SCHEDULERS`.
        optimizer: the optimizer to schedule.
        max_epochs: length of training in epochs, for the schedulers that step every epoch.
        steps_per_epoch: optimizer steps an epoch, for ``"one_cycle"``.
        warmup_epochs: epochs of linear warm-up.
        monitor: metric that ``"plateau"`` watches.
        options: further keyword arguments of the torch scheduler (``step_size``, ``gamma``, ...).
        total_steps: optimizer steps of the whole training, for ``"one_cycle"`` (a training that stops within
            an epoch); ``None``: ``max_epochs * steps_per_epoch``.

    Raises:
        ValueError: for an unknown name, or a warm-up in front of ``"one_cycle"``.

    Example:
        >>> from torch import nn
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> cfg = build_scheduler("cosine", opt, max_epochs=10, steps_per_epoch=5)
        >>> type(cfg["scheduler"]).__name__, cfg["interval"]
        ('CosineAnnealingLR', 'epoch')
    """
    check_choice("scheduler", name, SCHEDULER_NAMES)
    check_positive("warmup_epochs", warmup_epochs, allow_zero=True)
    opts = dict(options or {})
    sched = torch.optim.lr_scheduler
    interval = "epoch"
    span = max(max_epochs - warmup_epochs, 1)
    scheduler: LRScheduler | sched.ReduceLROnPlateau
    if name == "step":
        scheduler = sched.StepLR(optimizer, **{"step_size": max(span // 3, 1), "gamma": 0.1, **opts})
    elif name == "multistep":
        scheduler = sched.MultiStepLR(optimizer, **{"milestones": [span // 2, span * 3 // 4], "gamma": 0.1, **opts})
    elif name == "exponential":
        scheduler = sched.ExponentialLR(optimizer, **{"gamma": 0.9, **opts})
    elif name == "cosine":
        scheduler = sched.CosineAnnealingLR(optimizer, **{"T_max": span, **opts})
    elif name == "cosine_warm_restarts":
        scheduler = sched.CosineAnnealingWarmRestarts(optimizer, **{"T_0": max(span // 4, 1), **opts})
    elif name == "one_cycle":
        interval = "step"
        max_lr = [g["lr"] for g in optimizer.param_groups]
        steps = total_steps if total_steps is not None else max_epochs * steps_per_epoch
        scheduler = sched.OneCycleLR(optimizer, **{"max_lr": max_lr, "total_steps": max(steps, 1), **opts})
    else:
        plateau = {"patience": 2, "factor": 0.5, **opts}
        if warmup_epochs:
            scheduler = WarmupReduceLROnPlateau(optimizer, warmup_epochs, **plateau)
        else:
            scheduler = sched.ReduceLROnPlateau(optimizer, **plateau)
        return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
    if warmup_epochs:
        if interval == "step":
            raise ValueError(
                "scheduler='one_cycle' has its own warm-up (scheduler_options pct_start); set warmup_epochs=0."
            )
        warm = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warmup_epochs)
        scheduler = sched.SequentialLR(optimizer, [warm, scheduler], milestones=[warmup_epochs])
    return {"scheduler": scheduler, "interval": interval}
