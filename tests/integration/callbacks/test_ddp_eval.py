"""TTA and ensemble metrics under DDP on the CPU equal the single-process numbers."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist

from lightning_cnn import DigitsDataModule, SimpleCNN, TrainingPlots
from lightning_cnn.callbacks.ensemble import EnsembleEvaluation
from lightning_cnn.callbacks.tta import TestTimeAugmentation

# 216 test samples: divisible by two ranks, so Lightning's DistributedSampler pads no duplicates.
TEST_FRACTION = 0.12


@pytest.fixture
def no_process_group():
    yield
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _members() -> list[SimpleCNN]:
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        out.append(SimpleCNN(channels=(4, 8), hidden=()).eval())
    return out


class _RecordedPlots(TrainingPlots):
    """Writes which lines its reliability diagram drew (rank 0), so a spawned run can be checked."""

    def on_test_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            (self._dir / "reliability_curves.txt").write_text(" ".join(self.reliability_curves))


def _run(tmp_path, **trainer_kwargs) -> dict[str, float]:
    module, *others = _members()
    callbacks = [
        TestTimeAugmentation(views=("identity", "hflip", "shift_left"), merge="mean"),
        EnsembleEvaluation(members=others),
        _RecordedPlots(dirpath=str(tmp_path)),
    ]
    trainer = pl.Trainer(
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    dm = DigitsDataModule(batch_size=48, test_fraction=TEST_FRACTION)
    return trainer.test(module, dm, verbose=False)[0]


@pytest.mark.ddp
def test_tta_and_ensemble_metrics_under_ddp_equal_single_process(tmp_path, no_process_group):
    assert len(DigitsDataModule(test_fraction=TEST_FRACTION).split["test"]) % 2 == 0
    single = _run(tmp_path / "single", accelerator="cpu", devices=1)
    ddp = _run(tmp_path / "ddp", accelerator="cpu", devices=2, strategy="ddp_spawn")
    keys = [k for k in single if "tta" in k or "ensemble" in k or "member" in k]
    assert {"test/tta_acc", "test/tta_nll", "test/tta_ece", "test/ensemble_acc", "test/member2_acc"} <= set(keys)
    for key in keys:
        assert ddp[key] == pytest.approx(single[key], abs=1e-5), key
    # The reliability diagram draws the TTA and ensemble lines from every rank's probabilities, as the plain one.
    for run in ("single", "ddp"):
        assert (tmp_path / run / "reliability_curves.txt").read_text().split() == ["plain", "tta", "ensemble"], run
