"""Files that are never half-written, and checkpoints that load without unpickling arbitrary objects."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import torch

__all__ = ["atomic_open", "is_local", "load_checkpoint_file", "local_path", "save_checkpoint_file"]

PathLike = str | os.PathLike


def is_local(path: PathLike) -> bool:
    """Whether ``path`` is a file on this machine (no ``s3://``-style scheme, or ``file://``)."""
    return "://" not in str(path) or str(path).startswith("file://")


def local_path(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, without a ``file://`` prefix."""
    return Path(str(path).removeprefix("file://"))


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


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: Literal["w", "wb"] = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it takes the place of ``path``.

    The bytes go to a temporary file in the same folder, are flushed to the disk and then replace ``path``
    with :func:`os.replace`: a reader (or a crash at any moment) sees the old file or the complete new one,
    never a part. On an error the temporary file is removed and the error raised. The file gets the
    permissions a plain :func:`open` would give it (``0o666`` less the umask), not the owner-only ones of a
    temporary file. A ``path`` that is an existing folder is refused before anything is written.

    Args:
        path: the file to write (its folder is created).
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        **kwargs: passed to :func:`open` (``newline=""``, ``encoding=...``).

    Raises:
        IsADirectoryError: when ``path`` is a folder.

    Example:
        >>> import tempfile
        >>> path = f"{tempfile.mkdtemp()}/a.txt"
        >>> with atomic_open(path) as file:
        ...     _ = file.write("done")
        >>> open(path).read()
        'done'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"Expected mode to be one of ('w', 'wb'), but got {mode!r}.")
    target = local_path(path)
    if target.is_dir():
        raise IsADirectoryError(f"Cannot write {str(target)!r}: it is a folder; give a file path.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every system)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_checkpoint_file(checkpoint: dict[str, Any], path: PathLike) -> None:
    """Write ``checkpoint`` with :func:`torch.save` to ``path`` atomically (see :func:`atomic_open`).

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
    with atomic_open(path, "wb") as file:
        torch.save(checkpoint, file)


def load_checkpoint_file(path: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and primitives only.

    Raises:
        FileNotFoundError: when ``path`` does not exist, naming it.
        pickle.UnpicklingError: when the file holds other objects (which could run code when unpickled).
    """
    if is_local(path) and not local_path(path).is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
    return torch.load(str(local_path(path)), map_location=map_location, weights_only=True)
