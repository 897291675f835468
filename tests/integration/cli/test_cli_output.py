"""``lightning-cnn`` output a person can read, and the line it runs with no arguments."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from lightning_cnn.cli import DEFAULT_RUN, entry
from lightning_cnn.cli.entry import command_line

ROOT = Path(__file__).resolve().parents[3]
SHORT = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2"]


def test_fit_prints_validation_metrics_and_no_noise(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "lightning_cnn", "fit", *SHORT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out, err = done.stdout, done.stderr
    assert "LeafSpec" not in out + err and "litlogger" not in out + err and "litmodels" not in out + err
    # Filtered by their text, not wholesale: Lightning's other warnings and lines still come through.
    assert "is smaller than the logging interval Trainer(log_every_n_steps=10)" in err
    assert "GPU available: False" in err or "GPU available: True" in err
    assert re.search(r"val/loss: \d\.\d{3}", out) and re.search(r"val/acc: \d\.\d{3}", out), out[-2000:]
    assert "Trainable params" in out and "FLOPs" not in out  # nothing counted them: no column of zeros


def test_no_arguments_prints_the_line_it_runs(monkeypatch, capsys):
    ran: list[list[str]] = []
    monkeypatch.setattr(entry, "CNNCli", lambda args: ran.append(args))
    entry.main([])
    printed = capsys.readouterr().out.strip()
    assert printed == f"Running: {command_line(DEFAULT_RUN)}"
    assert ran == [list(DEFAULT_RUN)] and shlex.split(printed.removeprefix("Running: ")) == ["lightning-cnn", *ran[0]]


def test_the_readme_command_line_section_shows_the_default_line():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The command line") :].split("\n## ", 1)[0]
    assert command_line(DEFAULT_RUN) in section
    assert command_line(DEFAULT_RUN) in readme[: readme.index("## The command line")]  # and in "What make run does"


def test_commands_beside_lightnings_dispatch_before_the_parser(monkeypatch):
    got: list[list[str]] = []
    monkeypatch.setitem(entry.COMMANDS, "export", got.append)
    monkeypatch.setattr(entry, "CNNCli", lambda **_: (_ for _ in ()).throw(AssertionError("parsed")))
    entry.main(["export", "--ckpt_path", "x.ckpt"])
    assert got == [["--ckpt_path", "x.ckpt"]]
