"""The multi-node recipe on one machine: torchrun starts two ranks of `lightning-cnn fit` with examples/ddp.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.ddp import free_port

ROOT = Path(__file__).resolve().parents[3]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _flatten(config: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_ddp_config_differs_from_single_process_only_in_devices_and_strategy():
    single = _flatten(yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text()))
    ddp = _flatten(yaml.safe_load((ROOT / "examples" / "ddp.yaml").read_text()))
    changed = {k for k in single.keys() | ddp.keys() if single.get(k) != ddp.get(k)}
    assert changed == {"trainer.devices", "trainer.strategy"}


@pytest.mark.ddp
def test_torchrun_two_ranks_fit_and_write_one_checkpoint(tmp_path):
    port = free_port()
    command = [
        str(TORCHRUN),
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        "-m",
        "lightning_cnn",
        "fit",
        "-c",
        str(ROOT / "examples" / "ddp.yaml"),
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
        "--trainer.enable_progress_bar=false",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Both ranks reached the end of fit (each prints its rank through Lightning's "Initializing" line).
    log = proc.stdout + proc.stderr
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in log
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log
    assert "`Trainer.fit` stopped: `max_epochs=2` reached." in log
    # Rank 0 alone writes: one run folder, one best and one last checkpoint, one split file.
    runs = sorted((tmp_path / "runs" / "lightning_cnn").iterdir())
    assert [r.name for r in runs] == ["version_0"]
    assert sorted(p.name for p in (runs[0] / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert (runs[0] / "splits.json").is_file() and (runs[0] / "metrics.csv").is_file()
    assert log.count("Best checkpoint:") == 1
