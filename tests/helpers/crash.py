"""A callback that kills its own process without any cleanup, to test resuming a hard-killed run."""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """Send SIGKILL to this process at the end of training batch ``global_step == step`` (no cleanup runs).

    Args:
        step: the optimizer step after which to die.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
