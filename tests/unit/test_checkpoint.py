"""Atomic checkpoint writes and weights_only loading."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from lightning_cnn.checkpoint import AtomicCheckpointIO, load_checkpoint_file


class _Arbitrary:
    pass


def test_crash_while_writing_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)  # a partial file on the disk, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    monkeypatch.undo()
    io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert io.load_checkpoint(path)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path: Path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Arbitrary()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint_file(path)
    assert isinstance(AtomicCheckpointIO().load_checkpoint(path, weights_only=False)["payload"], _Arbitrary)


def test_missing_checkpoint_names_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"Checkpoint file not found: '.*nope\.ckpt'"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_atomic_checkpoint_gets_the_permissions_torch_save_gives(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "atomic.ckpt")
        AtomicCheckpointIO().save_checkpoint({"step": 2}, tmp_path / "atomic.ckpt")  # replacing an existing file
        torch.save({"step": 1}, tmp_path / "plain.ckpt")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic.ckpt").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain.ckpt").stat().st_mode), oct(mode)
