"""Stop training on a non-finite loss, naming the first bad step, without a host sync every step."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

__all__ = ["FiniteLossGuard", "NonFiniteLossError"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` when the training loss is NaN or infinite, naming the first bad step.

    Reads ``outputs["loss"]`` (or ``outputs`` when it is a tensor) in ``on_train_batch_end``, so it works
    with any LightningModule. The check stays on the device: the first non-finite step is recorded in a
    device tensor and read on the host only every ``check_every_n_steps`` steps (default: the trainer's
    ``log_every_n_steps``) and at the end of every epoch, so the training loop never waits for the device
    on the other steps. All ranks agree on the decision.

    Args:
        check_every_n_steps: how often to look at the flag on the host (``None``: ``log_every_n_steps``).

    Raises:
        NonFiniteLossError: ``"The training loss is nan at global step 12 (epoch 0, batch 12) ..."``.

    Example:
        >>> FiniteLossGuard(check_every_n_steps=5).check_every_n_steps
        5
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and (
            isinstance(check_every_n_steps, bool) or not isinstance(check_every_n_steps, int) or check_every_n_steps < 1
        ):
            raise ValueError(
                f"Expected check_every_n_steps to be an int >= 1 or None, but got {check_every_n_steps!r}."
            )
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None  # [global step, epoch, batch, value], step -1: none yet
        self._here = torch.empty(0)
        self._calls = 0

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss.detach().float()
        if self._first_bad is None or self._first_bad.device != loss.device:
            # float32: MPS has no float64; steps up to 2**24 are exact.
            self._first_bad = torch.full((4,), -1.0, device=loss.device, dtype=torch.float32)
            self._here = torch.empty(4, device=loss.device, dtype=torch.float32)
        bad = ~torch.isfinite(loss).all()
        new = bad & (self._first_bad[0] < 0)
        # fill_ with a Python number is a kernel taking the number as its argument: no host-to-device copy, so no
        # wait for the device (a tensor built from a list would be copied over and wait for the stream).
        # The step this batch belongs to: global_step has already counted the optimizer step of a batch that
        # stepped (step - 1 names it); a batch that only accumulates gradients belongs to the coming step.
        accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        stepped = (
            not getattr(pl_module, "automatic_optimization", True)
            or (batch_idx + 1) % accumulate == 0
            or batch_idx + 1 >= getattr(trainer, "num_training_batches", float("inf"))
        )
        here = self._here
        here[0].fill_(trainer.global_step - (1 if stepped else 0))
        here[1].fill_(trainer.current_epoch)
        here[2].fill_(batch_idx)
        if loss.numel() == 1:
            here[3].copy_(loss.reshape(()))
        else:
            here[3].fill_(torch.nan)
        self._first_bad = torch.where(new, here, self._first_bad)
        self._calls += 1
        every = self.check_every_n_steps or max(int(getattr(trainer, "log_every_n_steps", 50)), 1)
        if self._calls % every == 0:
            self._check(trainer)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        if self._first_bad is None:
            return
        found = bool(trainer.strategy.reduce_boolean_decision(bool(self._first_bad[0] >= 0), all=False))
        if not found:
            return
        step, epoch, batch, value = self._first_bad.tolist()
        if step < 0:
            raise NonFiniteLossError("The training loss became NaN or infinite on another rank.")
        raise NonFiniteLossError(
            f"The training loss is {value} at global step {int(step)} (epoch {int(epoch)}, batch {int(batch)}):"
            " training stopped. Lower the learning rate, check the inputs for NaN or infinite values, or clip"
            " gradients (--trainer.gradient_clip_val)."
        )
