"""Ensemble members from checkpoints: finding the files, and rebuilding each module from its checkpoint."""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from lightning_cnn._utils.io import load_checkpoint_file
from lightning_cnn._utils.restore import restoring_weights

__all__ = ["expand_checkpoints", "import_class", "load_member", "load_member_checkpoint"]


def expand_checkpoints(specs: str | Sequence[str]) -> list[str]:
    """Expand checkpoint paths, glob patterns and folders (their ``*.ckpt``, sorted) into file paths.

    Args:
        specs: paths, patterns or folders.

    Raises:
        FileNotFoundError: naming each entry that matches no checkpoint file.

    Example:
        >>> expand_checkpoints([])
        []
    """
    specs = [specs] if isinstance(specs, (str, os.PathLike)) else list(specs)
    paths: list[str] = []
    for spec in specs:
        spec = os.fspath(spec)
        if os.path.isdir(spec):
            found = sorted(str(p) for p in Path(spec).rglob("*.ckpt"))
        elif glob.has_magic(spec):
            found = sorted(glob.glob(spec, recursive=True))
        else:
            found = [spec] if os.path.isfile(spec) else []
        if not found:
            raise FileNotFoundError(f"Expected checkpoint files at {spec!r} (a path, glob or folder), but found none.")
        paths.extend(p for p in found if p not in paths)
    return paths


def import_class(path: str) -> type:
    """The class that an import path such as ``"my_package.MyModel"`` names.

    Raises:
        ValueError: when the path names no class.

    Example:
        >>> import_class("torch.nn.Linear")
        <class 'torch.nn.modules.linear.Linear'>
    """
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"Expected a class path such as 'my_package.MyModel', but got {path!r}.")
    cls = getattr(importlib.import_module(module_name), name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{path!r} names no class (module {module_name!r} has no class {name!r}).")
    return cls


def load_member(path: str, member_class: str | type | None = None, fallback: type | None = None) -> nn.Module:
    """Rebuild a module from a Lightning checkpoint, read with ``torch.load(weights_only=True)``.

    The class is ``member_class`` when given, else the checkpoint's ``hyper_parameters["_class_path"]``
    (saved by LightningCLI), else ``fallback``; it is built from the saved hyperparameters and gets the
    saved ``state_dict``. The module is returned in eval mode, on the CPU.

    Args:
        path: checkpoint file.
        member_class: a class or its import path.
        fallback: the class to use when neither names one (e.g. the running module's).

    Raises:
        ValueError: when no class is known.
    """
    return load_member_checkpoint(path, member_class, fallback)[0]


def load_member_checkpoint(
    path: str, member_class: str | type | None = None, fallback: type | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_member`, plus the rest of its checkpoint (all but the state dict), for the DataModule's checks."""
    ckpt = load_checkpoint_file(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    class_path = hparams.pop("_class_path", None)
    cls: type | None
    if member_class is not None:
        cls = import_class(member_class) if isinstance(member_class, str) else member_class
    elif class_path is not None:
        cls = import_class(class_path)
    else:
        cls = fallback
    if cls is None:
        raise ValueError(f"The checkpoint {path!r} names no class: pass member_class='package.Class'.")
    with restoring_weights():  # the state dict replaces every tensor: no weights file, no download
        module = cls(**hparams)
    module.load_state_dict(ckpt.pop("state_dict"))
    return module.eval(), ckpt
