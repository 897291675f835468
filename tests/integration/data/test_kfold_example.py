"""examples/kfold_ensemble.py on digits: K fold models, each tested alone, and their ensemble on the test split."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_fold_ensemble_is_at_least_as_accurate_as_the_mean_fold(tmp_path):
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "examples" / "kfold_ensemble.py"), "--folds", "3", "--epochs", "3"]
    run = subprocess.run([*cmd, "--out", str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    folds = [float(a) for a in re.findall(r"^fold \d: test accuracy ([0-9.]+)$", run.stdout, flags=re.M)]
    mean = float(re.search(r"^mean fold test accuracy: ([0-9.]+)$", run.stdout, flags=re.M).group(1))
    ensemble = float(re.search(r"^ensemble of 3 folds: test accuracy ([0-9.]+)$", run.stdout, flags=re.M).group(1))
    print(run.stdout)
    assert len(folds) == 3 and mean == pytest.approx(sum(folds) / 3, abs=1e-4)
    assert min(folds) > 0.8  # each fold model learned the digits in three epochs
    assert ensemble >= mean
    for k in range(3):  # every fold's run kept its fold in splits.json, and the same test split
        assert (tmp_path / "out" / f"fold{k}" / "best.ckpt").is_file()
    splits = [(tmp_path / "out" / f"fold{k}" / "splits.json").read_text() for k in range(3)]
    tests = [re.search(r'"test": \[[0-9, ]*\]', s).group(0) for s in splits]
    assert tests[0] == tests[1] == tests[2] and all('"num_folds": 3' in s for s in splits)
