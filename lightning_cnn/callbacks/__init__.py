"""Callbacks that work in any Lightning Trainer with any classifier LightningModule."""

__all__: list[str] = []
