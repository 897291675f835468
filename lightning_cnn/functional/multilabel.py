"""Multi-label predictions: per-label sigmoid probabilities, merged over views or members, and thresholded.

In a multi-label task each of the ``L`` outputs is its own yes/no question: the probability of label ``l`` is
``sigmoid(logit_l)``, independent of the others (the rows do not sum to one). Merging ``K`` predictions
(test-time views, ensemble members) is done label by label.
"""

from __future__ import annotations

import torch

from lightning_cnn._utils.validation import check_choice, check_probability
from lightning_cnn.functional.merge import MERGE_MODES

__all__ = ["labels_above", "merge_label_probs"]

# As in the multiclass vote: a share of the mean probability that breaks a tie (half the votes) and no more.
_VOTE_TIE_WEIGHT = 1e-3


def merge_label_probs(logits: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Merge ``K`` multi-label predictions of the same samples into per-label probabilities.

    - ``"mean"``: the mean of the ``K`` sigmoid probabilities.
    - ``"gmean"`` and ``"logits"``: the sigmoid of the mean logit (for one yes/no question the normalized
      geometric mean of the probabilities is exactly that).
    - ``"max"``: the largest of the ``K`` probabilities.
    - ``"vote"``: the share of the ``K`` predictions that say yes (probability above 0.5), label by label; a tie
      (exactly half) goes to the side of the mean probability, so the result is above 0.5 when the majority
      (or, in a tie, the mean) says yes.

    Args:
        logits: stacked logits.
        mode: one of ``"mean"``, ``"gmean"``, ``"max"``, ``"logits"``, ``"vote"``.

    Shape:
        - logits: ``[K, B, L]``
        - output: ``[B, L]``, in ``[0, 1]``

    Raises:
        ValueError: for an unknown mode, or logits that are not ``[K, B, L]`` with ``K >= 1``.

    Example:
        >>> logits = torch.tensor([[[2.0, -1.0]], [[-1.0, -3.0]], [[4.0, 1.0]]])
        >>> merge_label_probs(logits, "vote").gt(0.5).tolist()
        [[True, False]]
        >>> torch.allclose(merge_label_probs(logits, "mean"), logits.sigmoid().mean(0))
        True
    """
    check_choice("merge", mode, MERGE_MODES)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3 or logits.shape[0] == 0:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"Expected logits of shape [K, B, L] (K >= 1 predictions, batch, labels), but got {shape}.")
    logits = logits.float()
    probs = logits.sigmoid()
    if mode == "mean":
        return probs.mean(0)
    if mode in ("gmean", "logits"):
        return logits.mean(0).sigmoid()
    if mode == "max":
        return probs.amax(0)
    votes = (logits > 0).float().mean(0)
    return votes * (1 - _VOTE_TIE_WEIGHT) + _VOTE_TIE_WEIGHT * probs.mean(0)


def labels_above(probs: torch.Tensor, names: list[str], threshold: float = 0.5) -> list[list[str]]:
    """The names of the labels whose probability is above ``threshold``, for each row of ``probs`` ``[B, L]``.

    Raises:
        ValueError: for a threshold outside ``[0, 1)`` or ``names`` of another length than ``L``.

    Example:
        >>> labels_above(torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.4, 0.3]]), ["odd", "big", "prime"])
        [['odd', 'prime'], []]
    """
    check_probability("threshold", threshold)
    if probs.ndim != 2 or probs.shape[-1] != len(names):
        raise ValueError(
            f"Expected probabilities [B, {len(names)}] (one column per label name), but got {tuple(probs.shape)}."
        )
    chosen = (probs > threshold).cpu().tolist()
    return [[n for n, keep in zip(names, row, strict=True) if keep] for row in chosen]
