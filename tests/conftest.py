from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty folder (the CLI writes runs/ under the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fast_trainer(tmp_path: Path) -> dict:
    """Trainer arguments for quick, quiet runs."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": tmp_path,
    }


_ROOT = Path(__file__).resolve().parents[1]
_TOOL_LEFTOVERS = {".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "__pycache__", ".coverage"}


def _root_entries() -> set[str]:
    return {p.name for p in _ROOT.iterdir() if p.name not in _TOOL_LEFTOVERS and not p.name.endswith(".egg-info")}


@pytest.fixture(autouse=True)
def _repository_stays_clean():
    """Fail a test that leaves files in the repository's root (runs/, splits.json, lightning_logs/ ...)."""
    before = _root_entries()
    yield
    new = _root_entries() - before
    assert not new, f"the test left {sorted(new)} in {_ROOT}; write under tmp_path instead"
