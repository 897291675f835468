"""Every benchmark script runs end to end with tiny settings (the numbers themselves are not checked here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each prints once its measurements are done (a line of the result, not of the header).
PRINTS = {
    "augment": r"16x16\s+\d+\s+\d+\s+[\d.]+x",
    "channels_last": r"inference\s+both\s+\d+\s+[\d.]+",
    "checkpoint_size": r"with/without ratio [\d.]+",
    "default_recipe": r"\| 10ep-cosine \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+x \|",
    "data_scale": r"ratio streaming: setup folder/streaming [\d.]+x, .* loader streaming/folder [\d.]+x",
    "export": r"\d+\s+onnxruntime\s+\d+\s+[\d.]+x",
    "muon": r"timm - ours mean accuracy [+-][\d.]+; time ratio timm/ours [\d.]+x",
    "optimizers": r"\| adam \| [\d.e-]+ \| [\d.]+ \| [\d.]+ \|",
    "policies": r"autoaugment\s+16px\s+\d+\s+\d+\s+[\d.]+x",
    "recipes": r"bar batched autoaugment at 16 px: [\d.]+x >= 3.0x (met|NOT met)",
    "startup": r"median CPU: .* ratio [\d.]+x",
    "throughput": r"\| lightning \| \d+ \| [\d.]+ \|",
    "transfer": r"ratio [\d.]+ \(median of 1 paired repeats",
    "tta_ensemble": r"ensemble M=2: .* default/loop [\d.]+x",
}

RUNS = {
    "augment": ["--quick", "--repeats", "1", "--sizes", "16"],
    "channels_last": ["--batch", "8", "--steps", "1", "--repeats", "1"],
    "checkpoint_size": ["--backbone", "test_resnet"],
    "default_recipe": ["--quick", "--seeds", "0", "--only", "10ep-cosine"],
    "data_scale": ["--images", "200", "--loader-images", "64", "--workers", "0", "--batch", "32"],
    "export": ["--size", "8", "--batches", "1", "4", "--images", "8", "--repeats", "1", "--threads", "1"],
    "muon": ["--epochs", "1", "--seeds", "0"],
    "optimizers": ["--epochs", "1", "--only", "sgd", "adam"],
    "policies": ["--quick", "--repeats", "1", "--size", "16"],
    "recipes": [
        "--warmup",
        "1",
        "--block",
        "1",
        "--pairs",
        "1",
        "--size",
        "8",
        "--policy-images",
        "128",
        "--policy-repeats",
        "1",
        "--policy-size",
        "16",
    ],
    "startup": ["--repeats", "1"],
    "throughput": ["--models", "simple_cnn", "--batch", "16", "--steps", "2", "--repeats", "1", "--devices", "cpu"],
    "transfer": ["--backbone", "test_resnet", "--size", "32", "--batch", "4", "--repeats", "1", "--epoch-size", "16"],
    "tta_ensemble": ["--batch", "4", "--size", "16", "--channels", "4", "--members", "2", "--repeats", "1"],
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_runs_and_prints_its_ratios(name, tmp_path):
    args = [*RUNS[name], *(["--out", str(tmp_path / "optimizers.png")] if name == "optimizers" else [])]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(PRINTS[name], done.stdout), done.stdout  # it printed its measurements
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["optimizers.png"]), list(tmp_path.iterdir())
