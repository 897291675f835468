"""Exact resume: a run killed with SIGKILL mid-epoch and resumed from last.ckpt ends like an uninterrupted one."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[3]
CONFIG = {
    "seed_everything": 0,
    "trainer": {
        "max_epochs": 2,
        "deterministic": True,
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 5,
    },
    "model": {"class_path": "SimpleCNN", "init_args": {"channels": [4], "hidden": [16], "dropout": 0.3}},
    "data": {"class_path": "DigitsDataModule", "init_args": {"batch_size": 64}},
    "checkpoint": {"every_n_train_steps": 4},
}
# 20 batches per epoch: killed in epoch 1; checkpoints every 4 steps, the last at step 28. The CLI's defaults
# (CSV logger with a new version folder per run, AtomicCheckpointIO) apply: `--ckpt_path last` must find the
# interrupted run's folder by itself.
KILL_STEP, RESUME_STEP = 30, 28


def _fit(folder: Path, *extra: str) -> subprocess.Popen:
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lightning_cnn", "fit", "-c", "config.yaml", *extra]
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _metrics(folder: Path) -> dict[tuple[int, str], float]:
    out = {}
    with open(folder / "runs/lightning_cnn/version_0/metrics.csv") as file:
        for row in csv.DictReader(file):
            for key, value in row.items():
                if value and key not in ("epoch", "step"):
                    out[(int(row["step"]), key)] = float(value)
    return out


def test_sigkilled_run_resumed_from_last_ends_with_the_same_weights_and_metrics(tmp_path: Path):
    full = _fit(tmp_path / "full")
    killed = _fit(
        tmp_path / "killed",
        "--trainer.callbacks+=tests.helpers.crash.KillAtStep",
        f"--trainer.callbacks.step={KILL_STEP}",
    )
    killed_out, _ = killed.communicate(timeout=300)
    assert killed.returncode == -9, killed_out[-3000:]
    ckpt = torch.load(tmp_path / "killed/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == RESUME_STEP and ckpt["epoch"] == 1
    resumed = subprocess.Popen(
        [sys.executable, "-m", "lightning_cnn", "fit", "-c", "config.yaml", "--ckpt_path", "last"],
        cwd=tmp_path / "killed",
        env=os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    resumed_out, _ = resumed.communicate(timeout=300)
    full_out, _ = full.communicate(timeout=300)
    assert resumed.returncode == 0, resumed_out[-3000:]
    assert full.returncode == 0, full_out[-3000:]
    assert "Restored all states from the checkpoint" in resumed_out

    a = torch.load(tmp_path / "full/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "killed/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 40
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, atol=1e-6, rtol=0, msg=key)
    # Same split and the same checkpoint decisions (best score, and the best file written at the same step).
    assert a["datamodule_hyper_parameters"] == b["datamodule_hyper_parameters"]
    key = next(k for k in a["callbacks"] if k.startswith("ModelCheckpoint"))
    assert float(a["callbacks"][key]["best_model_score"]) == pytest.approx(
        float(b["callbacks"][key]["best_model_score"]), abs=1e-6
    )
    best_a = torch.load(tmp_path / "full" / a["callbacks"][key]["best_model_path"], weights_only=True)
    best_b = torch.load(tmp_path / "killed" / b["callbacks"][key]["best_model_path"], weights_only=True)
    assert best_a["global_step"] == best_b["global_step"]
    split_a = yaml.safe_load((tmp_path / "full/runs/lightning_cnn/version_0/splits.json").read_text())
    split_b = yaml.safe_load((tmp_path / "killed/runs/lightning_cnn/version_0/splits.json").read_text())
    assert split_a["digest"] == split_b["digest"]

    # Every metric logged after the resume point is the same, the interrupted epoch's aggregates (train/loss,
    # train/acc) included: the checkpoint carries the running sums of the training metrics.
    ma, mb = _metrics(tmp_path / "full"), _metrics(tmp_path / "killed")
    after = {k: v for k, v in ma.items() if k[0] > RESUME_STEP}
    assert {(39, "train/loss"), (39, "train/acc")} <= after.keys()
    assert len(after) >= 8 and any(k[1].startswith("val/") for k in after)
    for k, v in after.items():
        assert mb[k] == pytest.approx(v, abs=1e-6), k
    # The rows logged before the resume are kept (catalogue row 63): the killed run's history is the full run's.
    assert mb.keys() == ma.keys() and any(k[0] <= RESUME_STEP for k in mb)
    for k, v in ma.items():
        assert mb[k] == pytest.approx(v, abs=1e-6), k
    assert "train_metric_states" in ckpt and "train_metric_states" not in a  # only a mid-epoch save carries them


def test_resume_from_a_checkpoint_of_a_validation_inside_the_epoch(tmp_path: Path):
    """val_check_interval < 1: ModelCheckpoint saves after a validation in the middle of the epoch; the epoch's
    training aggregates still come out as in an uninterrupted run."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_cnn import DigitsDataModule, SimpleCNN

    quiet = {
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "deterministic": True,
        "default_root_dir": tmp_path,
    }

    def model() -> SimpleCNN:
        torch.manual_seed(0)
        return SimpleCNN(channels=(4, 8), hidden=(), lr=0.01)

    def epoch_aggregates(trainer: pl.Trainer) -> dict[str, float]:
        return {k: float(trainer.callback_metrics[k]) for k in ("train/loss", "train/acc")}

    trainer = pl.Trainer(max_epochs=2, val_check_interval=0.5, enable_checkpointing=False, **quiet)
    trainer.fit(model(), DigitsDataModule(batch_size=64))
    full = epoch_aggregates(trainer)

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, filename="{epoch}-{step}")
    pl.Trainer(max_epochs=2, val_check_interval=0.5, callbacks=[every], **quiet).fit(
        model(), DigitsDataModule(batch_size=64)
    )
    mid = tmp_path / "ckpt" / "epoch=1-step=30.ckpt"  # 20 batches an epoch: validation after batch 10 of epoch 1
    assert "train_metric_states" in torch.load(mid, weights_only=True)
    trainer = pl.Trainer(max_epochs=2, val_check_interval=0.5, enable_checkpointing=False, **quiet)
    trainer.fit(model(), DigitsDataModule(batch_size=64), ckpt_path=mid)
    assert epoch_aggregates(trainer) == pytest.approx(full, abs=1e-6)


@pytest.mark.parametrize(
    ("device_resident", "scheduler"),
    [(False, None), (True, None), (False, "cosine")],
    ids=["loader", "device_resident", "scheduler"],
)
def test_resume_from_any_training_step_checkpoint_ends_with_the_same_weights(
    tmp_path: Path, device_resident: bool, scheduler: str | None
):
    """Step checkpoints in the middle of an epoch (step 30) and at an epoch's last batch, before its validation
    (step 20), resume to the weights of an uninterrupted run: the device-resident loader keeps its place and the
    checkpoint's random state, and starting a validation loader draws nothing from the global random stream. A
    scheduler sized by the Trainer's step count (which builds the loader before the restore) changes nothing."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_cnn import DigitsDataModule, SimpleCNN

    quiet = {
        "max_epochs": 2,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "deterministic": True,
        "default_root_dir": tmp_path,
    }

    def run(ckpt_path: Path | None = None, callbacks: tuple = ()) -> dict[str, torch.Tensor]:
        pl.seed_everything(0, verbose=False)
        # dropout: the run consumes random numbers
        model = SimpleCNN(channels=(4,), hidden=(16,), dropout=0.3, scheduler=scheduler)
        dm = DigitsDataModule(batch_size=64, device_resident=device_resident, augment_on="device")
        pl.Trainer(callbacks=list(callbacks), enable_checkpointing=bool(callbacks), **quiet).fit(
            model, dm, ckpt_path=ckpt_path
        )
        return model.state_dict()

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1, filename="{step}")
    full = run(callbacks=(every,))
    for step in (20, 30):  # 20 batches an epoch
        resumed = run(tmp_path / "ckpt" / f"step={step}.ckpt")
        for key, value in full.items():
            torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0, msg=f"step {step}: {key}")


MIX_EMA = ["--data.mixup_alpha", "0.4", "--data.cutmix_alpha", "1.0", "--data.mix_prob", "0.8"]
MIX_EMA += ["--trainer.callbacks+=EMAWeightAveraging", "--trainer.callbacks.decay=0.9"]


def test_sigkilled_run_with_mixup_and_ema_resumed_from_last_ends_like_an_uninterrupted_one(tmp_path: Path):
    """Mixing draws (the DataModule's count of mixed batches) and the EMA copy (the checkpoint's averaged state_dict
    and current_model_state) both continue from last.ckpt: the averaged weights and the metrics match."""
    full = _fit(tmp_path / "full", *MIX_EMA)
    killed = _fit(
        tmp_path / "killed",
        *MIX_EMA,
        "--trainer.callbacks+=tests.helpers.crash.KillAtStep",
        f"--trainer.callbacks.step={KILL_STEP}",
    )
    killed_out, _ = killed.communicate(timeout=300)
    assert killed.returncode == -9, killed_out[-3000:]
    ckpt = torch.load(tmp_path / "killed/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == RESUME_STEP and ckpt["DigitsDataModule"]["mixed_batches"] == RESUME_STEP
    assert "current_model_state" in ckpt
    resumed = subprocess.Popen(
        [sys.executable, "-m", "lightning_cnn", "fit", "-c", "config.yaml", *MIX_EMA, "--ckpt_path", "last"],
        cwd=tmp_path / "killed",
        env=os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    resumed_out, _ = resumed.communicate(timeout=300)
    full_out, _ = full.communicate(timeout=300)
    assert resumed.returncode == 0, resumed_out[-3000:]
    assert full.returncode == 0, full_out[-3000:]
    a = torch.load(tmp_path / "full/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "killed/runs/lightning_cnn/version_0/checkpoints/last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 40
    # The averaged weights (what the run ends with) and the averaging state match exactly. current_model_state is
    # left out: ModelCheckpoint's on_train_end may write last.ckpt again after the average was copied into the
    # module, in one run and not the other.
    for part in ("state_dict", "averaging_state"):
        assert a[part].keys() == b[part].keys()
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, atol=1e-6, rtol=0, msg=f"{part}: {key}")
    ma, mb = _metrics(tmp_path / "full"), _metrics(tmp_path / "killed")
    after = {k: v for k, v in ma.items() if k[0] > RESUME_STEP}
    assert {(39, "train/loss"), (39, "train/acc")} <= after.keys() and any(k[1].startswith("val/") for k in after)
    for k, v in ma.items():
        assert mb[k] == pytest.approx(v, abs=1e-6), k
