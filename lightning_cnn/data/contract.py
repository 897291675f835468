"""What a DataModule's batches are, for a module that owns its input contract (and whether to normalize for it)."""

from __future__ import annotations

from typing import Any

from lightning_cnn._utils.protocols import OwnsNormalization

__all__ = ["datamodule_contract", "module_normalizes"]

# What reading a fact of a DataModule that cannot know it (no root, before setup) raises.
_UNKNOWN = (NotImplementedError, FileNotFoundError, ValueError, TypeError, RuntimeError, KeyError, IndexError)


def module_normalizes(module: Any) -> bool:
    """Whether ``module`` normalizes raw ``[0, 1]`` images itself, so a DataModule must hand it batches unnormalized.

    Example:
        >>> module_normalizes(object())
        False
    """
    return isinstance(module, OwnsNormalization) and bool(module.normalizes_inputs)


def datamodule_contract(data: Any) -> dict[str, Any]:
    """``normalize``, ``mean``, ``std``, ``in_channels``, ``image_size`` (``[H, W]``) and ``class_names`` of ``data``.

    And its ``task`` (``"multilabel"`` for a 0/1 label matrix, else ``"multiclass"``). A fact the DataModule
    cannot tell (e.g. class names without a training root) is ``None``. Without an
    ``image_size``, the size is read off the first training image (unaugmented: no random number is drawn).
    """

    def fact(name: str) -> Any:
        try:
            return getattr(data, name)
        except (AttributeError, *_UNKNOWN):
            return None

    size = fact("image_size")
    if size is None and getattr(data, "_split", None) is not None:
        try:
            size = list(data.preview_images(1).shape[-2:])
        except (AttributeError, *_UNKNOWN):
            size = None
    names = fact("class_names")
    return {
        "normalize": fact("normalize") or "none",
        "mean": fact("mean"),
        "std": fact("std"),
        "in_channels": fact("in_channels"),
        "image_size": [size, size] if isinstance(size, int) else size,
        "class_names": None if names is None else [str(n) for n in names],
        "task": fact("task"),
    }
