"""validate, test and fit in any order on one module and one Trainer (torchmetrics' states and inference mode)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest

from lightning_cnn import DigitsDataModule, SimpleCNN


@pytest.mark.parametrize("before", [["validate"], ["fit"], ["test"], ["test", "validate"]])
def test_fit_after_other_stages_runs_and_reports_its_own_validation(tmp_path, fast_trainer, before):
    pl.seed_everything(0)
    data = DigitsDataModule(batch_size=64)
    model = SimpleCNN(num_classes=10, lr=3e-3)
    limits = {"limit_train_batches": 8, "limit_val_batches": 3, "limit_test_batches": 3, "num_sanity_val_steps": 0}
    trainer = pl.Trainer(max_epochs=1, **fast_trainer, **limits)
    for stage in before:
        getattr(trainer, stage)(model, datamodule=data)
    if "fit" in before:
        trainer.fit_loop.max_epochs = 2  # the second fit continues for one more epoch
    trainer.fit(model, datamodule=data)
    assert trainer.state.finished and trainer.current_epoch == trainer.fit_loop.max_epochs
    during_fit = {k: trainer.callback_metrics[k].item() for k in ("val/acc", "val/loss")}
    again = trainer.validate(model, datamodule=data, verbose=False)[0]
    # fit's validation counted its own batches only: the same numbers as a fresh validation of the same weights
    assert during_fit == pytest.approx({k: again[k] for k in during_fit}, abs=1e-6)
    assert during_fit["val/acc"] > 0.3  # 8 to 16 steps on digits already learn (chance: 0.1)
