"""Checkpoint files that are never half-written, and that load without unpickling arbitrary objects."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "load_checkpoint_file", "save_checkpoint_file"]


def _is_local(path: _PATH) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def _umask() -> int:
    """The process's file mode creation mask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore, the only portable way to read it
    os.umask(mask)
    return mask


def save_checkpoint_file(checkpoint: dict[str, Any], path: _PATH) -> None:
    """Write ``checkpoint`` with :func:`torch.save` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, are flushed to the disk and then take the
    place of ``path`` with :func:`os.replace`: a reader (or a crash at any moment) sees the old file or
    the complete new one, never a part. On an error the temporary file is removed and the error raised.
    The file gets the permissions :func:`torch.save` would give it (``0o666`` less the umask), not the
    owner-only ones of a temporary file.

    Args:
        checkpoint: what to save (tensors and primitives).
        path: the file to write.

    Example:
        >>> import tempfile, torch
        >>> folder = tempfile.mkdtemp()
        >>> save_checkpoint_file({"w": torch.ones(2)}, f"{folder}/a.ckpt")
        >>> load_checkpoint_file(f"{folder}/a.ckpt")["w"]
        tensor([1., 1.])
    """
    path = Path(str(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every system)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_checkpoint_file(path: _PATH, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and primitives only.

    Raises:
        FileNotFoundError: when ``path`` does not exist, naming it.
        pickle.UnpicklingError: when the file holds other objects (which could run code when unpickled).
    """
    if _is_local(path) and not Path(str(path).removeprefix("file://")).is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
    return torch.load(str(path).removeprefix("file://"), map_location=map_location, weights_only=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes and ``weights_only=True`` loading.

    Saving a local file goes through :func:`save_checkpoint_file` (temporary file in the same folder,
    fsync, :func:`os.replace`); remote paths (``s3://`` ...) use Lightning's own saving. Loading uses
    ``weights_only=True`` unless ``weights_only=False`` is asked for explicitly, so a checkpoint that
    holds pickled objects is refused instead of run. Use it with ``Trainer(plugins=[AtomicCheckpointIO()])``
    or ``--trainer.plugins lightning_cnn.checkpoint.AtomicCheckpointIO``.

    Example:
        >>> import tempfile, torch
        >>> io = AtomicCheckpointIO()
        >>> path = f"{tempfile.mkdtemp()}/last.ckpt"
        >>> io.save_checkpoint({"step": 3}, path)
        >>> io.load_checkpoint(path)
        {'step': 3}
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (see :func:`save_checkpoint_file`)."""
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__}.save_checkpoint does not take storage_options, but got {storage_options!r}."
            )
        if not _is_local(path):
            super().save_checkpoint(checkpoint, path)
            return
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a checkpoint, with ``weights_only=True`` unless ``weights_only=False`` is given."""
        if _is_local(path) and not Path(str(path).removeprefix("file://")).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)
