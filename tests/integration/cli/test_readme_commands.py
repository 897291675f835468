"""The command lines of the README run (with a short training budget appended to `fit`).

The README's `make` and `pip install` lines run in `test_readme_shell.py`; the torchrun line runs under its own test,
`test_torchrun.py`. The GPU line runs too: with four GPUs it trains, elsewhere it must stop before anything is built
with the message that names what is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
SHORT = "--trainer.max_epochs 1 --trainer.limit_train_batches 2 --trainer.limit_val_batches 2"
QUIET = "--trainer.enable_progress_bar false --trainer.enable_model_summary false"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.match(r"(\.venv/bin/)?lightning-cnn ", line):
                commands.append(line)
    return commands


ALL = _commands()
COMMANDS = [c for c in ALL if "accelerator gpu" not in c]
GPU = [c for c in ALL if "accelerator gpu" in c]


def test_readme_has_command_lines():
    assert len(COMMANDS) >= 6 and len(GPU) == 1


def test_readme_command_lines_run(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    # The checkpoint the README tests comes from a first (short) run in the same folder, as after `make run`.
    first = f"lightning-cnn fit {SHORT} {QUIET}"
    for command in [first, *COMMANDS]:
        command = command.replace(".venv/bin/lightning-cnn", "lightning-cnn")
        if " fit" in command and "help" not in command and "--print_config" not in command:
            command = f"{command} {SHORT} {QUIET}"
        elif " test " in command:
            command = f"{command} {QUIET}"
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "model:" in (tmp_path / "cfg.yaml").read_text()


def test_readme_gpu_line_trains_on_four_gpus_or_says_what_is_missing(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = f"{GPU[0]} {SHORT} {QUIET}"
    done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    available = torch.cuda.device_count()
    if available >= 4:
        assert done.returncode == 0, done.stderr[-3000:]
        return
    assert done.returncode != 0
    missing = ("--trainer.accelerator gpu: this machine has no", "--trainer.devices 4: this machine has")
    assert any(m in done.stderr for m in missing), done.stderr[-3000:]
    assert not (tmp_path / "runs").exists()
