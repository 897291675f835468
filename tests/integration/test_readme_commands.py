"""The command lines of the README run (with a short training budget appended to `fit`).

The README's `make` and `pip install` lines run in `test_readme_shell.py`; the torchrun line runs under its own test,
`test_torchrun.py`; the GPU line does not run (no GPU here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHORT = "--trainer.max_epochs 1 --trainer.limit_train_batches 2 --trainer.limit_val_batches 2"
QUIET = "--trainer.enable_progress_bar false --trainer.enable_model_summary false"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.match(r"(\.venv/bin/)?lightning-cnn ", line) and "gpu" not in line:
                commands.append(line)
    return commands


COMMANDS = _commands()


def test_readme_has_command_lines():
    assert len(COMMANDS) >= 6


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
