"""Experiment runners built on the models and DataModules: each trains several models and reports a table."""

from lightning_cnn.recipes.stage_sweep import stage_sweep

__all__ = ["stage_sweep"]
