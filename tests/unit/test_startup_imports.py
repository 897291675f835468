"""``lightning-cnn --help`` starts light: the command line adds no heavy import to what Lightning imports itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imported on first use only: timm (TransferClassifier), MLflow and W&B (their loggers), scikit-learn (digits are
# bundled). matplotlib and scipy are listed too: torchmetrics imports them whenever they are installed, so Lightning's
# own import may bring them, but the command line must not add them.
HEAVY = ("timm", "matplotlib", "scipy", "mlflow", "wandb", "sklearn", "torchvision.models", "onnx", "onnxruntime")
NEVER = ("timm", "mlflow", "wandb", "sklearn", "onnx", "onnxruntime")


def _imported(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(done.stdout))


def test_the_command_line_adds_no_heavy_import_to_lightnings_own():
    ours, lightnings = _imported("lightning_cnn.cli"), _imported("lightning.pytorch.cli")
    assert ours <= lightnings, f"import lightning_cnn.cli adds {sorted(ours - lightnings)}"
    assert not ours & set(NEVER), sorted(ours & set(NEVER))
