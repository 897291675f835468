"""FiniteLossGuard's per-step work stays on the device: no tensor is made from host data after the first step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_cnn.callbacks import FiniteLossGuard
from lightning_cnn.callbacks.guard import NonFiniteLossError


class RecordOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


class FakeTrainer(SimpleNamespace):
    class strategy:
        @staticmethod
        def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:
            return decision


def test_steps_make_no_tensor_from_host_data():
    guard, trainer = FiniteLossGuard(check_every_n_steps=100), FakeTrainer(global_step=1, current_epoch=0)
    losses = [torch.tensor(0.5), {"loss": torch.tensor(0.25)}, torch.tensor(float("nan"))]
    guard.on_train_batch_end(trainer, None, losses[0], None, 0)  # the first step allocates the device buffers
    with RecordOps() as record:
        for batch, loss in enumerate(losses[1:], start=1):
            trainer.global_step += 1
            guard.on_train_batch_end(trainer, None, loss, None, batch)
    # lift_fresh: a tensor made from Python data (on a GPU, a copy to the device that waits for the stream).
    assert record.ops and not [op for op in record.ops if "lift_fresh" in op or "_to_copy" in op], record.ops
    with pytest.raises(NonFiniteLossError, match=r"The training loss is nan at global step 2 \(epoch 0, batch 2\)"):
        guard._check(trainer)
