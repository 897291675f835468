"""RunSummary: one short table, at the start of fit, of what defines the run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_cnn._utils.protocols import HasSplit

__all__ = ["RunSummary", "describe_run"]


def _get(obj: Any, *names: str) -> Any:
    """The first of ``names`` that ``obj`` has as an attribute or a hyperparameter (``obj.hparams``), else ``None``."""
    for name in names:
        value = getattr(obj, name, None)
        if value is None and isinstance(getattr(obj, "hparams", None), Mapping):
            value = obj.hparams.get(name)
        if value is not None:
            return value
    return None


def describe_run(trainer: pl.Trainer, module: pl.LightningModule) -> list[tuple[str, str]]:
    """The facts to identify in any training code, as ``(what, value)`` rows.

    Input and output structure, train / val / test sizes, loss, optimizer and learning rate, epochs, batch size,
    dropout, augmentation and normalization. The sizes come from a DataModule with a split
    (:class:`~lightning_cnn._utils.protocols.HasSplit`); the other values from the module's and the DataModule's
    attributes or hyperparameters of those names. Values a module or DataModule does not expose read ``-``.
    """
    dm = getattr(trainer, "datamodule", None)
    channels = _get(dm, "in_channels")
    size = _get(dm, "image_size")
    classes = _get(dm, "num_classes") or _get(module, "num_classes")
    split = dm.split if isinstance(dm, HasSplit) else None
    sizes = "-"
    if isinstance(split, Mapping):
        sizes = " / ".join(str(len(split.get(k, ()))) for k in ("train", "val", "test"))
    optimizer, lr = _get(module, "optimizer"), _get(module, "lr")
    if trainer.optimizers:  # what was really configured
        opt = trainer.optimizers[0]
        optimizer, lr = type(opt).__name__, max(g["lr"] for g in opt.param_groups)
    scheduler = _get(module, "scheduler")
    dropout = [f"{name} {_get(module, name)}" for name in ("dropout", "drop_connect", "stochastic_depth")]
    dropout = [d for d in dropout if not d.endswith(" None") and not d.endswith(" 0.0")]
    augment = _get(dm, "augment")
    rows = [
        ("input", f"[B, {channels or '?'}, {size or '?'}, {size or '?'}] float images"),
        ("output", f"[B, {classes or '?'}] logits (probabilities in predict)"),
        ("train / val / test", sizes),
        ("loss", str(_get(module, "loss") or "-")),
        (
            "optimizer",
            f"{optimizer or '-'} (lr {lr if lr is not None else '-'})" + (f", {scheduler}" if scheduler else ""),
        ),
        ("epochs", str(trainer.max_epochs)),
        ("batch size", str(_get(dm, "batch_size") or "-")),
        ("dropout", ", ".join(dropout) or "none"),
        ("augmentation", "none" if not augment else f"{augment} ({_get(dm, 'augment_on') or 'cpu'})"),
        ("normalization", str(_get(dm, "normalize") or "-")),
    ]
    return rows


class RunSummary(Callback):
    """Print, at the start of ``fit`` (rank 0), a short table of what defines the run.

    Example:
        >>> RunSummary().rows
        []
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rows = describe_run(trainer, pl_module)
        if not trainer.is_global_zero:
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Run summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for what, value in self.rows:
            table.add_row(what, value)
        Console().print(table)
