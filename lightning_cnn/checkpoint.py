"""Lightning's checkpoint IO with atomic local writes and ``weights_only=True`` loading."""

from __future__ import annotations

from typing import Any

from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_cnn._utils.io import (
    is_local,
    load_checkpoint_file,
    local_path,
    save_checkpoint_file,
    unreadable_checkpoint,
)

__all__ = ["AtomicCheckpointIO", "load_checkpoint_file", "save_checkpoint_file"]


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
        if not is_local(path):
            super().save_checkpoint(checkpoint, path)
            return
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a checkpoint, with ``weights_only=True`` unless ``weights_only=False`` is given.

        Raises:
            FileNotFoundError: when ``path`` does not exist, naming it.
            UnreadableCheckpointError: (a ``ValueError``) when the file is empty, cut off (a write or copy that did not
                finish) or no checkpoint, naming it and the other checkpoints beside it (the run's ``best.ckpt``, say).
        """
        if is_local(path) and not local_path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)
        except Exception as err:
            wrapped = unreadable_checkpoint(path, err, name_others=True)
            if wrapped is None:
                raise
            raise wrapped from err
