"""What the command line settles in the parsed config before anything is built: devices, sizes, the run's root."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lightning_cnn._utils.command_line import save_dir_given
from lightning_cnn.models.contract import InputContract

__all__ = [
    "DEFAULT_SAVE_DIR",
    "check_accelerator",
    "data_from_checkpoint",
    "link_backbone_input_size",
    "resume_last_run",
    "use_default_root_dir",
]

#: Where the default logger writes its runs when no ``--trainer.default_root_dir`` is given.
DEFAULT_SAVE_DIR = "runs"


def check_accelerator(config: Any) -> None:
    """Refuse ``--trainer.accelerator gpu|cuda`` without (enough) such devices, before anything is built."""
    trainer = config.get("trainer") or {}
    accelerator = trainer.get("accelerator")
    if not isinstance(accelerator, str) or accelerator.lower() not in ("gpu", "cuda"):
        return
    kind = "CUDA" if accelerator.lower() == "cuda" else "CUDA or MPS"
    available = torch.cuda.device_count()
    if available == 0 and kind != "CUDA" and torch.backends.mps.is_available():
        available = 1
    if available == 0:
        raise ValueError(
            f"--trainer.accelerator {accelerator}: this machine has no {kind} device. Use --trainer.accelerator"
            " cpu, or auto to take a GPU where there is one."
        )
    devices = trainer.get("devices")
    if isinstance(devices, str) and devices.strip().isdigit():  # the command line gives "4"
        devices = int(devices)
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > available:
        raise ValueError(
            f"--trainer.devices {devices}: this machine has {available} {kind} device(s). Use --trainer.devices"
            f" {available} or fewer (-1: all of them), or add machines with --trainer.num_nodes"
            " (docs/distributed.md)."
        )


def data_from_checkpoint(config: Any, ckpt: Path | None) -> None:
    """Predicting a folder without a training root: class names, color and size come from the checkpoint."""
    data = config.get("data")
    args = data.get("init_args") if data is not None else None
    if ckpt is None or args is None or "class_names" not in args or args.get("root") is not None:
        return
    contract = InputContract.from_checkpoint(ckpt)
    if args.get("class_names") is None:
        args["class_names"] = contract.class_names
    if contract.in_channels == 1 and args.get("color") == "rgb":
        args["color"] = "grayscale"
    size = contract.image_size
    if args.get("image_size") is None and size is not None and size[0] == size[1]:
        args["image_size"] = size[0]


def link_backbone_input_size(config: Any) -> None:
    """With a TransferClassifier, a DataModule without ``image_size`` resizes to the backbone's input size."""
    model, data = config.get("model"), config.get("data")
    if model is None or data is None or not str(model.get("class_path", "")).endswith("TransferClassifier"):
        return
    data_args = data.get("init_args")
    if data_args is None or "image_size" not in data_args or data_args.get("image_size") is not None:
        return
    import timm

    cfg = timm.models.get_pretrained_cfg(str(model.init_args.get("backbone") or "resnet18"))
    if cfg is not None and cfg.input_size:
        data_args["image_size"] = int(cfg.input_size[-1])


def resume_last_run(config: Any) -> Path | None:
    """Make ``fit --ckpt_path last`` continue the newest run folder that holds a ``last.ckpt``.

    With ``--checkpoint.dirpath`` the checkpoints are in that folder, where Lightning finds ``last.ckpt``. The
    default logger opens a new ``version_N`` folder for every run, where Lightning would look for
    ``last.ckpt`` in vain and silently start from scratch; resuming appends to the interrupted run instead.
    """
    if config.get("ckpt_path") != "last":
        return None
    dirpath = (config.get("checkpoint") or {}).get("dirpath")
    if dirpath:  # checkpoints in a folder of their own: Lightning looks for last.ckpt there
        in_dir = sorted(Path(dirpath).glob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
        if not in_dir:
            raise FileNotFoundError(f"--ckpt_path last: no last.ckpt in --checkpoint.dirpath {dirpath} to resume from.")
        return in_dir[-1]
    logger = config.get("trainer", {}).get("logger")
    args = getattr(logger, "init_args", None)
    if args is None or args.get("version") is not None:
        return None  # Lightning looks for it (and starts afresh, with a warning, when there is none)
    base = Path(args.get("save_dir") or ".") / (args.get("name") or "lightning_logs")
    found = sorted(base.glob("version_*/checkpoints/last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"--ckpt_path last: no last.ckpt under {base}/version_*/checkpoints/ to resume from.")
    args["version"] = found[-1].parents[1].name.removeprefix("version_")
    return found[-1]


def use_default_root_dir(config: Any, argv: Sequence[str]) -> None:
    """With ``--trainer.default_root_dir DIR``, the default logger writes its runs under DIR, as in Lightning.

    The logger's ``save_dir`` is ``runs`` by default; a root folder takes its place (``DIR/lightning_cnn/version_N``),
    unless a ``save_dir`` is given on the command line or in a config file: that one wins.
    """
    trainer = config.get("trainer") or {}
    root = trainer.get("default_root_dir")
    args = getattr(trainer.get("logger"), "init_args", None)
    if not root or args is None or args.get("save_dir") != DEFAULT_SAVE_DIR or save_dir_given(argv):
        return
    args["save_dir"] = str(root)
