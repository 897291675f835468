"""Ensemble members from checkpoints: finding the files, and rebuilding each module from its checkpoint."""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from lightning_cnn._utils.io import load_checkpoint_file
from lightning_cnn._utils.restore import restoring_weights

__all__ = ["expand_checkpoints", "import_class", "load_member", "load_member_checkpoint"]


def expand_checkpoints(specs: str | Sequence[str]) -> list[str]:
    """Expand checkpoint paths, glob patterns and folders (their ``*.ckpt``, sorted) into distinct files.

    Each file counts once, however it is spelled (relative, absolute, ``./x``, through a link): a file given
    again is cut, with a warning naming it. A folder (or pattern) that yields a run's ``last.ckpt`` beside other
    checkpoints of the same folder (``best.ckpt``, ``epoch=3.ckpt``) gives those: ``last.ckpt`` is the same run
    at its last epoch, not another member; it is left out with a warning (name the file itself to use it).

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
    seen: dict[str, str] = {}  # real path: the spelling kept
    for spec in specs:
        spec = os.fspath(spec)
        if os.path.isdir(spec):
            found = _without_last(sorted(str(p) for p in Path(spec).rglob("*.ckpt")), spec)
        elif glob.has_magic(spec):
            found = _without_last(sorted(glob.glob(spec, recursive=True)), spec)
        else:
            found = [spec] if os.path.isfile(spec) else []
        if not found:
            raise FileNotFoundError(f"Expected checkpoint files at {spec!r} (a path, glob or folder), but found none.")
        for p in found:
            real = os.path.realpath(p)
            if real in seen:
                rank_zero_warn(
                    f"Checkpoint {p!r} is given more than once (as {seen[real]!r} before): it counts as one member."
                )
                continue
            seen[real] = p
            paths.append(p)
    return paths


def _without_last(found: list[str], spec: str) -> list[str]:
    """``found`` less each ``last*.ckpt`` that has other checkpoints beside it (the same run), with a warning."""
    folders = {os.path.dirname(p) for p in found if not _is_last(p)}
    dropped = [p for p in found if _is_last(p) and os.path.dirname(p) in folders]
    if dropped:
        rank_zero_warn(
            f"{spec!r}: left out {dropped}, the last checkpoint of a run whose other checkpoints are members"
            " already (one run, one member); name a last.ckpt itself to use it instead."
        )
    return [p for p in found if p not in dropped]


def _is_last(path: str) -> bool:
    name = os.path.basename(path)
    return name == "last.ckpt" or (name.startswith("last-v") and name.endswith(".ckpt"))


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
