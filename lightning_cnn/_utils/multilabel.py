"""The multi-label task: its name, the torchmetrics set that scores it, and its targets as metrics take them."""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torchmetrics import Metric
from torchmetrics.classification import (
    MultilabelAccuracy,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
)

from lightning_cnn._utils.protocols import HasTask

__all__ = ["MULTILABEL", "TASKS", "TaskName", "is_multilabel", "label_targets", "multilabel_scores"]

TaskName = Literal["multiclass", "multilabel"]
TASKS: tuple[str, ...] = get_args(TaskName)
MULTILABEL = "multilabel"


def multilabel_scores(num_labels: int, threshold: float = 0.5) -> dict[str, Metric]:
    """The metrics of a multi-label task, by their logged names: ``acc``, ``f1``, ``map`` and ``exact_match``.

    ``acc`` is the per-label accuracy averaged over the labels (macro), ``f1`` the macro F1, ``map`` the macro
    multi-label average precision (threshold-free), ``exact_match`` the share of samples whose every label is
    right. All take probabilities ``[B, L]`` and 0/1 targets ``[B, L]``; a probability above ``threshold`` is a
    positive.

    Example:
        >>> scores = multilabel_scores(2)
        >>> for metric in scores.values():
        ...     metric.update(torch.tensor([[0.9, 0.2], [0.1, 0.7]]), torch.tensor([[1, 0], [0, 1]]))
        >>> {name: round(float(m.compute()), 2) for name, m in scores.items()}
        {'acc': 1.0, 'f1': 1.0, 'map': 1.0, 'exact_match': 1.0}
    """
    return {
        "acc": MultilabelAccuracy(num_labels, threshold=threshold, average="macro"),
        "f1": MultilabelF1Score(num_labels, threshold=threshold, average="macro"),
        "map": MultilabelAveragePrecision(num_labels, average="macro"),
        "exact_match": MultilabelExactMatch(num_labels, threshold=threshold),
    }


def label_targets(y: torch.Tensor) -> torch.Tensor:
    """0/1 targets ``[B, L]`` as int64, as torchmetrics' multi-label metrics take them.

    Example:
        >>> label_targets(torch.tensor([[1.0, 0.0]])).tolist()
        [[1, 0]]
    """
    return y.round().long() if y.is_floating_point() else y.long()


def is_multilabel(module: Any) -> bool:
    """Whether ``module`` says (:class:`~lightning_cnn._utils.protocols.HasTask`) that its task is multi-label.

    Example:
        >>> is_multilabel(object())
        False
    """
    return isinstance(module, HasTask) and module.task == MULTILABEL
