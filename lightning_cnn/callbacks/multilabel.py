"""The multi-label side of the evaluation callbacks: per-label scores of merged sigmoid probabilities."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection

from lightning_cnn._utils.multilabel import label_targets, multilabel_scores

__all__ = ["as_log_probs", "ensemble_label_values", "make_label_scores", "update_label_scores"]

#: Probabilities are kept above this before their log is taken (the evaluation base keeps log-probabilities).
_TINY = 1e-12


def make_label_scores(num_labels: int) -> MetricCollection:
    """``acc``, ``f1``, ``map`` and ``exact_match`` of one stream of per-label probabilities (synced across ranks).

    Example:
        >>> scores = make_label_scores(2)
        >>> update_label_scores(scores, torch.tensor([[0.9, 0.2], [0.6, 0.7]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> {k: round(float(v), 2) for k, v in scores.compute().items()}
        {'acc': 0.75, 'exact_match': 0.5, 'f1': 0.83, 'map': 1.0}
    """
    metrics: dict[str, Metric | MetricCollection] = dict(multilabel_scores(num_labels))
    return MetricCollection(metrics, compute_groups=False)


def update_label_scores(scores: MetricCollection, probs: torch.Tensor, labels: torch.Tensor) -> None:
    """Update :func:`make_label_scores` with probabilities ``[B, L]`` and 0/1 labels ``[B, L]``."""
    scores.to(probs.device).update(probs.float(), label_targets(labels).to(probs.device))


def as_log_probs(probs: torch.Tensor) -> torch.Tensor:
    """``log`` of per-label probabilities, as the evaluation base keeps them (its ``exp`` gives them back)."""
    return probs.float().clamp_min(_TINY).log()


def ensemble_label_values(streams: dict[str, MetricCollection]) -> dict[str, torch.Tensor]:
    """The logged values of an ensemble's multi-label streams (``member{i}``, ``ensemble``, ``ensemble_vote``).

    Each stream's ``acc``, ``f1``, ``map`` and ``exact_match`` as ``{stream}_{metric}``, and ``member_mean_f1``.
    """
    values: dict[str, torch.Tensor] = {}
    member_f1 = []
    for name, scores in streams.items():
        for metric, value in scores.compute().items():
            values[f"{name}_{metric}"] = value
            if metric == "f1" and name.startswith("member"):
                member_f1.append(value)
    if member_f1:
        values["member_mean_f1"] = torch.stack(member_f1).mean()
    return values
