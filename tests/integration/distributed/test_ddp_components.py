"""Module, DataModule and callbacks under DDP on the CPU (gloo, 2 processes), checked in one spawned run.

One ``torch.multiprocessing.spawn`` starts two processes with torchrun's environment variables set, so
each Trainer (``strategy="ddp"``) joins the same process group instead of launching its own: the run fits
SimpleCNN with SnapshotEnsemble and TrainingPlots on a recording DigitsDataModule, validates
and tests fixed weights, and fits a gradually unfrozen TransferClassifier. Each rank saves what it saw;
the test compares the ranks with each other and with single-process numbers.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from lightning_cnn import DigitsDataModule, SimpleCNN, TransferClassifier
from lightning_cnn.callbacks import AugmentationPreview, FiniteLossGuard, RunSummary, SnapshotEnsemble, TrainingPlots
from lightning_cnn.data.splits import split_digest
from tests.helpers.ddp import free_port, join_as_torchrun_rank

# 250 validation and 216 test samples: even, so Lightning's DistributedSampler pads no duplicate
# (an odd count would repeat one sample on the second rank and count it twice in the metrics).
DATA = {"batch_size": 32, "val_fraction": 0.14, "test_fraction": 0.12}
QUIET = {
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
}


class RecordingDigits(DigitsDataModule):
    """Records the split and, every epoch, the pool indices this rank's sampler gives."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen: dict[int, list[int]] = {}

    def record_epoch(self, trainer: pl.Trainer) -> None:
        sampler = trainer.train_dataloader.sampler
        self.seen[trainer.current_epoch] = [int(self.split["train"][i]) for i in sampler]


class Recorder(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        trainer.datamodule.record_epoch(trainer)


def _fixed_model() -> SimpleCNN:
    torch.manual_seed(0)
    return SimpleCNN(channels=(4, 8), hidden=())


def _transfer() -> TransferClassifier:
    torch.manual_seed(0)
    return TransferClassifier(backbone="test_resnet", finetune="gradual", unfreeze_epochs=[1, 3, 4, 5, 6], lr=0.01)


def _transfer_data() -> DigitsDataModule:
    return DigitsDataModule(image_size=16, rgb=True, **DATA)


def _worker(rank: int, out: str, port: int) -> None:
    join_as_torchrun_rank(rank, port)
    ddp = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", **QUIET}
    result: dict = {}

    # 1. SimpleCNN + DataModule + SnapshotEnsemble + TrainingPlots.
    dm = RecordingDigits(**DATA, augment="light", augment_on="device")
    recorder, snapshots = Recorder(), SnapshotEnsemble(cycles=2)
    summary, guard, preview = RunSummary(), FiniteLossGuard(check_every_n_steps=3), AugmentationPreview()
    model = SimpleCNN(channels=(4, 8), hidden=(), lr=0.01)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[recorder, snapshots, TrainingPlots(dirpath=str(Path(out) / "plots")), summary, guard, preview],
        default_root_dir=out,
        **ddp,
    )
    trainer.fit(model, dm)
    result["fit"] = {
        "split": split_digest(dm.split),
        "seen": dm.seen,
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "snapshots": len(snapshots.snapshots),
        "val": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
        "world_size": trainer.world_size,
        "summary": summary.rows,
        "preview": str(preview.path) if preview.path is not None else None,
    }

    # 2. Fixed weights: validation and test metrics over the whole sets.
    # TrainingPlots draws the test confusion matrix and reliability diagram from the synced predictions.
    trainer = pl.Trainer(default_root_dir=out, callbacks=[TrainingPlots(dirpath=str(Path(out) / "plots"))], **ddp)
    model, dm = _fixed_model(), DigitsDataModule(**DATA)
    result["val"] = trainer.validate(model, dm, verbose=False)[0]
    result["test"] = trainer.test(model, dm, verbose=False)[0]

    # 3. TransferClassifier, finetune="gradual": the top stage opens at epoch 1.
    model = _transfer()
    before = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=4, limit_val_batches=2, default_root_dir=out, **ddp)
    trainer.fit(model, _transfer_data())
    result["transfer"] = {
        "before": before,
        "after": {k: v.detach().clone() for k, v in model.backbone.state_dict().items()},
        "frozen": sorted(model._frozen),
        "stages": len(model._stages),
    }
    torch.save(result, Path(out) / f"rank{rank}.pt")


def _single(tmp_path: Path) -> tuple[dict, dict]:
    trainer = pl.Trainer(accelerator="cpu", devices=1, default_root_dir=tmp_path, **QUIET)
    model, dm = _fixed_model(), DigitsDataModule(**DATA)
    return trainer.validate(model, dm, verbose=False)[0], trainer.test(model, dm, verbose=False)[0]


@pytest.mark.ddp
def test_components_under_ddp(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_worker, args=(str(out), free_port()), nprocs=2, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    fits = [r["fit"] for r in ranks]

    # DataModule: the same split on both ranks; each epoch the ranks see disjoint halves of the train set.
    assert fits[0]["world_size"] == 2
    assert fits[0]["split"] == fits[1]["split"] == split_digest(DigitsDataModule(**DATA).split)
    train = set(DigitsDataModule(**DATA).split["train"].tolist())
    for epoch in (0, 1):
        a, b = fits[0]["seen"][epoch], fits[1]["seen"][epoch]
        assert len(a) == len(b) == -(-len(train) // 2)  # 1331 samples: the sampler pads one duplicate
        assert set(a) | set(b) == train
        assert len(set(a) & set(b)) <= len(train) % 2
    assert fits[0]["seen"][0] != fits[0]["seen"][1]  # reshuffled per epoch

    # Training ran to identical weights on both ranks.
    for key, value in fits[0]["weights"].items():
        assert torch.equal(value, fits[1]["weights"][key]), key
    # Metrics are synced: both ranks report the same global numbers.
    assert fits[0]["val"] == fits[1]["val"] and "val/acc" in fits[0]["val"]
    # SnapshotEnsemble: one snapshot per cycle on every rank; TrainingPlots wrote its figures.
    assert fits[0]["snapshots"] == fits[1]["snapshots"] == 2
    assert {p.name for p in (out / "plots").glob("*.png")} >= {"curves.png", "confusion_matrix.png"}
    # RunSummary describes the same run on both ranks; FiniteLossGuard checked (finite losses) without
    # stopping; AugmentationPreview wrote one preview, on rank 0.
    assert fits[0]["summary"] == fits[1]["summary"] and dict(fits[0]["summary"])["augmentation"] == "light (device)"
    assert fits[0]["preview"] is not None and Path(fits[0]["preview"]).is_file() and fits[1]["preview"] is None

    # ClassifierModule metrics over the whole validation and test sets equal single-process numbers.
    val, test = _single(tmp_path / "single")
    for got, want in ((ranks[0]["val"], val), (ranks[1]["val"], val), (ranks[0]["test"], test)):
        assert set(got) == set(want)
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-5), key
    assert ranks[1]["test"] == ranks[0]["test"]

    # TransferClassifier gradual: after unfreezing, the backbone is identical on both ranks, the opened
    # top stage has moved and the still-frozen stem has not.
    t0, t1 = ranks[0]["transfer"], ranks[1]["transfer"]
    assert t0["frozen"] == t1["frozen"] == list(range(t0["stages"] - 1))
    for key in t0["after"]:
        assert torch.equal(t0["after"][key], t1["after"][key]), key
    moved = {k for k in t0["after"] if not torch.equal(t0["after"][k], t0["before"][k])}
    assert any(k.startswith("layer4") for k in moved)
    assert not any(k.startswith(("conv1", "layer1")) and "running" not in k for k in moved)


def test_sync_batchnorm_flag_converts_simple_cnn(fast_trainer):
    """Trainer(sync_batchnorm=True) turns every BatchNorm into SyncBatchNorm when the strategy sets up.

    Under DDP, SyncBatchNorm trains on GPUs only: on the CPU torch's DDP refuses it ("SyncBatchNorm
    layers only work with GPU modules"). Here the conversion the flag applies is checked, and the
    converted model trains in one process (where SyncBatchNorm computes plain batch statistics).
    """
    ddp = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", sync_batchnorm=True, **QUIET)
    model = SimpleCNN(channels=(4, 8), hidden=(), lr=0.01)
    converted = ddp.strategy._layer_sync.apply(model)
    norms = [m for m in converted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 4 and all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2, **fast_trainer)
    trainer.fit(converted, DigitsDataModule(**DATA))
    assert all(int(m.num_batches_tracked) == 3 for m in norms)
