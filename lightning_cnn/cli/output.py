"""What ``lightning-cnn`` prints: two notices filtered out by their exact text, and a model summary without empty rows.

Each filter matches one message and nothing else: every other warning and every other line Lightning logs stays.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
from typing_extensions import override

__all__ = ["LEAFSPEC_WARNING", "LIGHTNING_TIPS", "ModelSummaryTable", "TipFilter", "quiet_known_notices"]

#: torch's deprecation of ``LeafSpec``, raised when Lightning flattens a batch (nothing a user can change).
LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated, use `isinstance\(treespec, TreeSpec\) and"

#: The advertisements Lightning logs through ``rank_zero_info`` when a Trainer is built, by their exact start.
LIGHTNING_TIPS = (
    "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]",
    "💡 Tip: For seamless cloud uploads and versioning, try installing [litmodels]",
)

#: Where ``rank_zero_info`` logs.
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class TipFilter(logging.Filter):
    """Drops the log records that start with one of :data:`LIGHTNING_TIPS`; keeps every other record."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIGHTNING_TIPS)


def quiet_known_notices() -> None:
    """Filter the ``LeafSpec`` deprecation warning and Lightning's cloud tips (once per process)."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", message=LEAFSPEC_WARNING, category=category)
    logger = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, TipFilter) for f in logger.filters):
        logger.addFilter(TipFilter())


class ModelSummaryTable(RichModelSummary):
    """Lightning's rich model summary, without the FLOPs column and total when nothing could count them.

    Lightning counts FLOPs only with an ``example_input_array``; without one every row and the total read 0, which
    says nothing about the model. Every other column and total is Lightning's.
    """

    @staticmethod
    @override
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if not (name == "FLOPs" and total_flops == 0)]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name or " ", justify="left" if name in ("", "Name", "Type", "Mode") else "right")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = {
            "Trainable params": get_human_readable_count(int(trainable_parameters)),
            "Non-trainable params": get_human_readable_count(int(total_parameters - trainable_parameters)),
            "Total params": get_human_readable_count(int(total_parameters)),
            "Total estimated model params size (MB)": get_formatted_model_size(model_size),
            "Modules in train mode": str(total_training_modes.get("train", 0)),
            "Modules in eval mode": str(total_training_modes.get("eval", 0)),
        }
        if total_flops:
            totals["Total FLOPs"] = get_human_readable_count(total_flops)
        grid = Table.grid()
        for label, value in totals.items():
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
