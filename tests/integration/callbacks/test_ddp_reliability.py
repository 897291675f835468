"""Resume and the NaN guard under DDP on the CPU (gloo, 2 processes), checked in one spawned run.

1. A run stopped in the middle of its second epoch and resumed from the checkpoint of that step ends with the
   weights and the logged metrics of an uninterrupted run, the interrupted epoch's `train/acc` and
   `train/loss` included (the checkpoint carries the training metrics' sums over both ranks).
2. A NaN loss on one rank only stops both ranks: the rank that saw it names the step, the other says it
   happened on another rank (a one-sided decision would leave the other rank waiting forever).
3. PredictionWriter gathers both ranks' predictions of 269 test images (135 and 134: Lightning's predict sampler
   does not pad) into one file equal to a single process's; and from an iterable dataset that gives rank 1 no
   batch at all, it writes rank 0's rows instead of waiting for rank 1.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, IterableDataset

from lightning_cnn import DigitsDataModule, PredictionWriter, SimpleCNN
from lightning_cnn.callbacks import FiniteLossGuard
from lightning_cnn.callbacks.guard import NonFiniteLossError
from tests.helpers.ddp import free_port, join_as_torchrun_rank
from tests.helpers.files import read_csv_rows

# 1331 training samples: 666 per rank, 21 batches of 32 per rank and epoch. Stopped at step 29: batch 8 of epoch 1.
DATA = {"batch_size": 32, "val_fraction": 0.14, "test_fraction": 0.12}
STOP_STEP, NAN_STEP = 29, 3
PREDICT = {"batch_size": 32}  # 269 test images: odd, so the ranks hold different counts
QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}


def _model() -> SimpleCNN:
    torch.manual_seed(0)
    return SimpleCNN(channels=(4, 8), hidden=(), lr=0.01)


class NaNLossOnRankOne(SimpleCNN):
    """Rank 1 reports a NaN loss at one step; the NaN is a constant, so the gradients (and rank 0) stay finite."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if self.global_rank == 1 and self.global_step == NAN_STEP:
            loss = loss + torch.tensor(float("nan"))
        return loss


class RankZeroOnly(IterableDataset):
    """Five images on rank 0, none on rank 1."""

    def __iter__(self):
        if dist.get_rank() == 0:
            g = torch.Generator().manual_seed(0)
            yield from ((torch.randn(1, 8, 8, generator=g),) for _ in range(5))


def _epoch_metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "val/"))}


def _worker(rank: int, out: str, port: int) -> None:
    join_as_torchrun_rank(rank, port)
    ddp = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "deterministic": True, **QUIET}
    result: dict = {}

    model = _model()
    trainer = pl.Trainer(max_epochs=2, enable_checkpointing=False, default_root_dir=out, **ddp)
    trainer.fit(model, DigitsDataModule(**DATA))
    result["full"] = {"metrics": _epoch_metrics(trainer), "weights": model.state_dict()}

    mid = ModelCheckpoint(dirpath=Path(out) / "ckpt", filename="mid", every_n_train_steps=STOP_STEP)
    trainer = pl.Trainer(max_epochs=2, max_steps=STOP_STEP, callbacks=[mid], default_root_dir=out, **ddp)
    trainer.fit(_model(), DigitsDataModule(**DATA))
    model = _model()
    trainer = pl.Trainer(max_epochs=2, enable_checkpointing=False, default_root_dir=out, **ddp)
    trainer.fit(model, DigitsDataModule(**DATA), ckpt_path=Path(out) / "ckpt" / "mid.ckpt")
    result["resumed"] = {"metrics": _epoch_metrics(trainer), "weights": model.state_dict()}

    writer = PredictionWriter(path=str(Path(out) / "predictions_ddp.csv"))
    trainer = pl.Trainer(callbacks=[writer], default_root_dir=out, **ddp)
    trainer.predict(model, DigitsDataModule(**PREDICT), return_predictions=False)
    writer = PredictionWriter(path=str(Path(out) / "predictions_iterable.csv"), class_names=list("0123456789"))
    trainer = pl.Trainer(callbacks=[writer], default_root_dir=out, **ddp)
    trainer.predict(model, DataLoader(RankZeroOnly(), batch_size=2), return_predictions=False)

    torch.manual_seed(0)
    guard = FiniteLossGuard(check_every_n_steps=5)
    trainer = pl.Trainer(max_epochs=1, callbacks=[guard], enable_checkpointing=False, default_root_dir=out, **ddp)
    try:
        trainer.fit(NaNLossOnRankOne(channels=(4, 8), hidden=()), DigitsDataModule(**DATA))
        result["nan"] = None
    except NonFiniteLossError as error:
        result["nan"] = str(error)
    result["nan_stopped_at"] = trainer.global_step
    torch.save(result, Path(out) / f"rank{rank}.pt")


@pytest.mark.ddp
def test_mid_epoch_resume_and_nan_guard_under_ddp(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    context = mp.spawn(_worker, args=(str(out), free_port()), nprocs=2, join=False)
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the DDP run did not finish in 240 s: one rank is waiting for the other")
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    saved = torch.load(out / "ckpt" / "mid.ckpt", weights_only=True)
    assert saved["global_step"] == STOP_STEP and saved["epoch"] == 1
    assert "train_metric_states" in saved
    for result in ranks:
        full, resumed = result["full"], result["resumed"]
        assert {"train/acc", "train/loss", "val/acc", "val/loss"} <= full["metrics"].keys()
        assert resumed["metrics"].keys() == full["metrics"].keys()
        for key, value in full["metrics"].items():
            assert resumed["metrics"][key] == pytest.approx(value, abs=1e-6), key
        for key, value in full["weights"].items():
            torch.testing.assert_close(resumed["weights"][key], value, atol=1e-6, rtol=0, msg=key)

    model = _model()
    model.load_state_dict(ranks[0]["resumed"]["weights"])
    writer = PredictionWriter(path=str(tmp_path / "predictions_single.csv"))
    trainer = pl.Trainer(accelerator="cpu", devices=1, callbacks=[writer], default_root_dir=tmp_path, **QUIET)
    trainer.predict(model, DigitsDataModule(**PREDICT), return_predictions=False)
    ddp_rows = read_csv_rows(out / "predictions_ddp.csv")
    single_rows = read_csv_rows(tmp_path / "predictions_single.csv")
    assert len(ddp_rows) == len(single_rows) == 269
    for a, b in zip(ddp_rows, single_rows, strict=True):
        assert (a["id"], a["label"], a["predicted"]) == (b["id"], b["label"], b["predicted"])
        assert float(a["confidence"]) == pytest.approx(float(b["confidence"]), abs=1e-5)

    iterable = read_csv_rows(out / "predictions_iterable.csv")
    assert [r["id"] for r in iterable] == ["0", "1", "2", "3", "4"] and {r["label"] for r in iterable} == {""}

    assert ranks[1]["nan"] is not None and f"at global step {NAN_STEP} (epoch 0, batch {NAN_STEP})" in ranks[1]["nan"]
    assert ranks[0]["nan"] == "The training loss became NaN or infinite on another rank."
    assert ranks[0]["nan_stopped_at"] == ranks[1]["nan_stopped_at"] == 5  # the first check after the NaN
