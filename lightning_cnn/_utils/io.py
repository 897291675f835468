"""Files that are never half-written, and checkpoints that load without unpickling arbitrary objects."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import torch

__all__ = [
    "UnreadableCheckpointError",
    "atomic_open",
    "check_checkpoint_complete",
    "is_local",
    "load_checkpoint_file",
    "local_path",
    "save_checkpoint_file",
    "unreadable_checkpoint",
]

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


class UnreadableCheckpointError(ValueError):
    """A checkpoint file that cannot be read: empty, cut off (a write or copy that did not finish), or no checkpoint."""


def _what_is_wrong(path: Path) -> str:
    """Why a file that ``torch.load`` cannot read is no checkpoint, in words, from its size and first bytes."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if size == 0:
        return "is empty (0 bytes): it is incomplete, a write that never finished"
    if head == b"PK\x03\x04":  # torch.save writes a zip archive: its directory comes last, so a cut file lacks it
        return f"is incomplete ({size} bytes, cut off while it was written or copied) or damaged"
    return f"is not a checkpoint ({size} bytes that torch.save did not write)"


def _others_beside(file: Path) -> str:
    """A sentence naming the other ``*.ckpt`` files beside ``file``, newest first, or saying there are none."""
    others = sorted(
        (p for p in file.parent.glob("*.ckpt") if p.name != file.name and p.is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if not others:
        return f" There is no other checkpoint in {str(file.parent)!r}."
    names = ", ".join(repr(str(p)) for p in others[:5]) + (", ..." if len(others) > 5 else "")
    return f" Other checkpoints in its folder, newest first: {names}; pass one with --ckpt_path (or ckpt_path=)."


def unreadable_checkpoint(
    path: PathLike, error: BaseException, *, name_others: bool = False
) -> UnreadableCheckpointError | None:
    """The error to raise for a checkpoint ``torch.load`` failed on with ``error``, or ``None`` to re-raise ``error``.

    ``None`` for the refusal of pickled objects (``Weights only load failed``), which says what it found, and for a
    missing file or a refused permission, which name the file already.

    Args:
        path: the file that was read.
        error: what ``torch.load`` raised.
        name_others: also name the other ``*.ckpt`` files in its folder (where a run can resume from instead).
    """
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return None
    if "Weights only load failed" in str(error):
        return None
    first = str(error).split(". ")[0].splitlines()[0].rstrip(".") if str(error) else "(no message)"
    local = is_local(path)
    what = _what_is_wrong(local_path(path)) if local else "is incomplete or not a checkpoint"
    others = _others_beside(local_path(path)) if name_others and local else ""
    return UnreadableCheckpointError(
        f"Cannot read checkpoint {str(path)!r}: the file {what} ({type(error).__name__}: {first}).{others}"
    )


def load_checkpoint_file(path: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and primitives only.

    Raises:
        FileNotFoundError: when ``path`` does not exist, naming it.
        UnreadableCheckpointError: (a ``ValueError``) when the file is empty, cut off or no checkpoint, naming it.
        pickle.UnpicklingError: when the file holds other objects (which could run code when unpickled).

    Example:
        >>> import tempfile
        >>> path = f"{tempfile.mkdtemp()}/notes.ckpt"
        >>> _ = open(path, "w").write("hello")
        >>> try:
        ...     load_checkpoint_file(path)
        ... except UnreadableCheckpointError as err:
        ...     print(str(err).split(": ", 1)[1])
        the file is not a checkpoint (5 bytes that torch.save did not write) (KeyError: 101).
    """
    if is_local(path) and not local_path(path).is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
    try:
        return torch.load(str(local_path(path)), map_location=map_location, weights_only=True)
    except Exception as err:
        wrapped = unreadable_checkpoint(path, err)
        if wrapped is None:
            raise
        raise wrapped from err


def check_checkpoint_complete(path: PathLike) -> None:
    """Raise the error :func:`load_checkpoint_file` would, cheaply, for a local file that is no complete zip archive.

    ``torch.save`` writes a zip archive whose directory comes last: a file cut off while it was written or copied
    has none, which reading the file's end shows without loading its tensors. For checking a checkpoint before a
    run builds anything (and opens its log folder) on the way to loading it.

    Raises:
        FileNotFoundError: when ``path`` does not exist, naming it.
        UnreadableCheckpointError: when it is empty, cut off or no checkpoint, naming it and the checkpoints beside it.
    """
    if not is_local(path):
        return
    file = local_path(path)
    if not file.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
    if zipfile.is_zipfile(file):
        return
    try:  # not a zip: the legacy format of torch.save, or no checkpoint at all
        torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:
        wrapped = unreadable_checkpoint(path, err, name_others=True)
        if wrapped is None:
            raise
        raise wrapped from err
