"""Merging several predictions of the same samples: test-time-augmentation views and ensemble members.

Every function takes a stack of logits ``[K, B, C]`` (``K`` views or members, ``B`` samples, ``C``
classes) and works on log-probabilities (``log_softmax``), never on raw logits: an infinite logit gives
a finite answer instead of a NaN, and the geometric mean is a stable ``softmax(mean(log_softmax))``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

from lightning_cnn._utils.validation import check_choice

__all__ = [
    "MERGE_MODES",
    "MergeMode",
    "ensemble_average",
    "majority_vote",
    "merge_log_probs",
    "merge_predictions",
    "vote_counts",
]

MergeMode = Literal["mean", "gmean", "max", "logits", "vote"]
MERGE_MODES: tuple[str, ...] = get_args(MergeMode)

# Weight of the mean probability added to the vote counts in "vote" mode: small enough never to
# outweigh one vote (it is < 1), large enough to break ties and keep every probability above zero.
_VOTE_TIE_WEIGHT = 1e-3


def _check_stack(logits: torch.Tensor, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"Expected {name} to be a torch.Tensor, but got {type(logits).__name__}.")
    if logits.ndim != 3:
        raise ValueError(
            f"Expected {name} of shape [K, B, C] (views or members, batch, classes), but got {tuple(logits.shape)}."
        )
    if logits.shape[0] == 0:
        raise ValueError(f"Expected {name} to stack at least one prediction (K >= 1), but got K = 0.")


def vote_counts(logits: torch.Tensor) -> torch.Tensor:
    """Count, for every sample and class, how many of the ``K`` predictions pick that class.

    Args:
        logits: stacked logits (or probabilities: only their argmax matters).

    Shape:
        - logits: ``[K, B, C]``
        - output: ``[B, C]``, float, each row sums to ``K``

    Example:
        >>> logits = torch.tensor([[[2.0, 1.0, 0.0]], [[0.0, 3.0, 1.0]], [[5.0, 0.0, 0.0]]])
        >>> vote_counts(logits)
        tensor([[2., 1., 0.]])
    """
    _check_stack(logits)
    picks = logits.argmax(-1)  # [K, B]
    counts = torch.zeros(logits.shape[1:], dtype=torch.float32, device=logits.device)
    return counts.scatter_add_(1, picks.transpose(0, 1), torch.ones(picks.shape[::-1], device=logits.device))


def majority_vote(logits: torch.Tensor) -> torch.Tensor:
    """The class most of the ``K`` predictions pick; a tie goes to the higher mean probability.

    Args:
        logits: stacked logits of ``K`` views or members.

    Shape:
        - logits: ``[K, B, C]``
        - output: ``[B]``, int64

    Example:
        >>> logits = torch.tensor([[[2.0, 1.0, 0.0]], [[0.0, 3.0, 1.0]], [[5.0, 0.0, 0.0]]])
        >>> majority_vote(logits)
        tensor([0])
        >>> tie = torch.tensor([[[1.0, 0.0]], [[0.0, 4.0]]])  # one vote each; class 1 is surer
        >>> majority_vote(tie)
        tensor([1])
    """
    return merge_log_probs(logits, "vote").argmax(-1)


def merge_log_probs(
    logits: torch.Tensor, mode: MergeMode = "mean", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Merge ``K`` predictions of the same samples into one log-probability distribution per sample.

    Modes, with ``p_k = softmax(logits_k)``:

    - ``"mean"``: the mean probability ``sum_k w_k p_k`` (the usual ensemble and TTA average).
    - ``"gmean"``: the normalized geometric mean, ``softmax(sum_k w_k log p_k)``.
    - ``"logits"``: the softmax of the mean logit. It equals ``"gmean"`` (``log p_k`` and ``logits_k``
      differ by a per-sample constant that the softmax removes) and is computed the same stable way.
    - ``"max"``: the largest probability of each class over the ``K`` predictions, renormalized.
    - ``"vote"``: the share of the ``K`` predictions whose argmax is each class (majority vote), plus
      ``1e-3`` of the mean probability, renormalized: never more than a vote, it breaks ties and keeps
      every probability (and the negative log-likelihood) finite.

    All modes run on ``log_softmax`` values in float32 or wider, and infinite logits are first bounded
    to ``±sqrt(finfo.max)``, so they never make a NaN.

    Args:
        logits: stacked logits of ``K`` views or members.
        mode: how to merge.
        weights: optional non-negative weight of each of the ``K`` predictions (normalized to sum to
            one) for ``"mean"``, ``"gmean"`` and ``"logits"``; uniform when ``None``.

    Returns:
        Log-probabilities; ``exp`` of each row sums to one.

    Raises:
        ValueError: for an unknown mode, a stack that is not ``[K, B, C]``, or weights of the wrong size.

    Shape:
        - logits: ``[K, B, C]``
        - weights: ``[K]``
        - output: ``[B, C]``

    Example:
        >>> logits = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])
        >>> merge_log_probs(logits, "mean").exp()
        tensor([[0.6904, 0.3096]])
        >>> merge_log_probs(logits, "gmean").exp()
        tensor([[0.7311, 0.2689]])
    """
    _check_stack(logits)
    check_choice("mode", mode, MERGE_MODES)
    k = logits.shape[0]
    dtype = torch.promote_types(logits.dtype, torch.float32)
    # An infinite logit would make ``inf - inf``: bound them first (a no-op for every realistic logit).
    bound = math.sqrt(torch.finfo(dtype).max)
    log_p = logits.to(dtype).clamp(-bound, bound).log_softmax(-1)  # [K, B, C]
    log_w: torch.Tensor | None = None
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=dtype, device=logits.device)
        if weights.shape != (k,):
            raise ValueError(f"Expected weights of shape [{k}] (one per prediction), but got {tuple(weights.shape)}.")
        if bool((weights < 0).any()) or not bool(weights.sum() > 0):
            raise ValueError(f"Expected non-negative weights with a positive sum, but got {weights.tolist()}.")
        log_w = (weights / weights.sum()).log().view(k, 1, 1)
    if mode == "mean":
        if log_w is None:
            return torch.logsumexp(log_p, 0) - math.log(k)
        return torch.logsumexp(log_p + log_w, 0)
    if mode in ("gmean", "logits"):
        mean_log_p = log_p.mean(0) if log_w is None else (log_p * log_w.exp()).sum(0)
        return mean_log_p.log_softmax(-1)
    if mode == "max":
        return log_p.amax(0).log_softmax(-1)
    # vote: log(counts + eps * mean_prob), renormalized, computed in log space.
    log_counts = vote_counts(logits).to(dtype).log()  # -inf where no vote
    log_mean = torch.logsumexp(log_p, 0) - math.log(k)
    merged = torch.logaddexp(log_counts, log_mean + math.log(_VOTE_TIE_WEIGHT))
    return merged.log_softmax(-1)


def merge_predictions(
    logits: torch.Tensor, mode: MergeMode = "mean", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Merge ``K`` predictions of the same samples into one probability distribution per sample.

    ``exp`` of :func:`merge_log_probs`; see there for the modes. Merging ``K`` identical predictions
    returns their probabilities in every mode but ``"vote"`` (whose output is a vote share).

    Args:
        logits: stacked logits of ``K`` views or members.
        mode: ``"mean"``, ``"gmean"``, ``"max"``, ``"logits"`` or ``"vote"``.
        weights: optional weight of each prediction (see :func:`merge_log_probs`).

    Shape:
        - logits: ``[K, B, C]``
        - output: ``[B, C]``, rows sum to one

    Example:
        >>> logits = torch.tensor([[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]])
        >>> merge_predictions(logits, "max")
        tensor([[0.5761, 0.2119, 0.2119]])
        >>> merge_predictions(torch.tensor([[[float("inf"), 0.0]], [[0.0, 0.0]]]), "gmean")
        tensor([[1., 0.]])
    """
    return merge_log_probs(logits, mode, weights).exp()


def ensemble_average(logits: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The ensemble's mean probability over ``M`` members, optionally weighted.

    Args:
        logits: stacked logits of the members.
        weights: optional non-negative weight of each member.

    Shape:
        - logits: ``[M, B, C]``
        - weights: ``[M]``
        - output: ``[B, C]``

    Example:
        >>> members = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])
        >>> ensemble_average(members)
        tensor([[0.5000, 0.5000]])
        >>> ensemble_average(members, weights=torch.tensor([3.0, 1.0]))
        tensor([[0.6904, 0.3096]])
    """
    return merge_predictions(logits, "mean", weights)
