"""The metrics a classifier logs, for its task: multiclass (one softmax) or multi-label (a sigmoid per label)."""

from __future__ import annotations

from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MultilabelAccuracy,
)

from lightning_cnn._utils.multilabel import MULTILABEL, multilabel_scores

__all__ = ["eval_metrics", "train_accuracy"]


def eval_metrics(num_classes: int, top_k: int, task: str = "multiclass") -> nn.ModuleDict:
    """The validation or test metrics by their logged names (``val/<name>``, ``test/<name>``).

    Multiclass: ``loss``, ``acc`` (micro), ``f1`` (macro), ``nll``, ``ece`` (15 bins, L1) and, when
    ``1 < top_k < num_classes``, ``top{k}_acc``. Multi-label: ``loss``, ``acc`` (per-label accuracy, macro),
    ``f1`` (macro), ``map`` (macro average precision) and ``exact_match``
    (:func:`~lightning_cnn._utils.multilabel.multilabel_scores`).

    Example:
        >>> sorted(eval_metrics(3, 5, "multilabel"))
        ['acc', 'exact_match', 'f1', 'loss', 'map']
    """
    if task == MULTILABEL:
        return nn.ModuleDict({"loss": MeanMetric(), **multilabel_scores(num_classes)})
    metrics: dict[str, Metric] = {
        "loss": MeanMetric(),
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "nll": MeanMetric(),
        "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"),
    }
    if 1 < top_k < num_classes:
        metrics[f"top{top_k}_acc"] = MulticlassAccuracy(num_classes, top_k=top_k, average="micro")
    return nn.ModuleDict(metrics)


def train_accuracy(num_classes: int, task: str = "multiclass") -> Metric:
    """``train/acc``: micro accuracy of the classes, or per-label accuracy (macro) of a multi-label task.

    The loss already rejects bad labels: no per-step argument check (it would sync with the host).
    """
    if task == MULTILABEL:
        return MultilabelAccuracy(num_classes, average="macro", validate_args=False)
    return MulticlassAccuracy(num_classes, average="micro", validate_args=False)
