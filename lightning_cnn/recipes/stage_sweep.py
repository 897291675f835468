"""A linear probe on every stage of a frozen backbone: which stage's features suit the data best."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from lightning_cnn.models.transfer import TransferClassifier
from lightning_cnn.models.weights import WeightsMappingName

__all__ = ["stage_sweep"]

# The probes' Trainers: one device, nothing written but the DataModule's split file, no output.
_PROBE_TRAINER: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


def stage_sweep(
    datamodule: Any,
    backbone: str,
    weights: str | None = None,
    weights_mapping: WeightsMappingName = "names",
    stages: Sequence[int] | None = None,
    max_epochs: int = 10,
    lr: float = 1e-2,
    seed: int = 0,
    default_root_dir: str | Path | None = None,
) -> list[dict[str, float]]:
    """Train a linear probe on every stage of a frozen backbone and report validation accuracy per stage.

    Each probe caches its features after the first epoch, so the sweep costs about one backbone pass over the
    data per stage.

    Args:
        datamodule: a DataModule with ``num_classes`` and ``in_channels``.
        backbone: timm model name.
        weights: local weights for the backbone.
        weights_mapping: ``"names"`` or ``"order"``.
        stages: stages to probe (default: all).
        max_epochs: epochs of each probe.
        lr: learning rate of the probes.
        seed: seed of each probe's initialization.
        default_root_dir: folder of the probes' Trainers, where the DataModule writes ``splits.json``
            (default: the working directory, as for any Lightning Trainer).

    Returns:
        One ``{"stage", "channels", "val_acc"}`` row per stage.
    """
    probe = TransferClassifier(
        num_classes=datamodule.num_classes, in_channels=datamodule.in_channels, backbone=backbone
    )
    all_stages = range(len(probe.backbone.feature_info))
    rows: list[dict[str, float]] = []
    for stage in stages if stages is not None else all_stages:
        pl.seed_everything(seed, verbose=False)
        model = TransferClassifier(
            num_classes=datamodule.num_classes,
            in_channels=datamodule.in_channels,
            backbone=backbone,
            weights=weights,
            weights_mapping=weights_mapping,
            probe_stage=stage,
            cache_features=True,
            lr=lr,
        )
        trainer = pl.Trainer(max_epochs=max_epochs, default_root_dir=default_root_dir, **_PROBE_TRAINER)
        trainer.fit(model, datamodule)
        acc = trainer.validate(model, datamodule, verbose=False)[0]["val/acc"]
        rows.append({"stage": stage, "channels": model.backbone.feature_info[stage]["num_chs"], "val_acc": float(acc)})
    return rows
