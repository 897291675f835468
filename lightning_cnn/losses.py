"""The loss zoo: classification losses by name, and weighted mixtures of them.

Every loss takes ``logits`` ``[B, K]`` and a target that is either class indices (int64 ``[B]``) or a
float ``[B, K]`` (soft labels, or multi-label 0/1 targets for ``"sigmoid_cross_entropy"``). Losses that
compare distributions (``"kl_div"``, ``"pseudo_huber"``, ``"l1"``, ``"mse"``) compare the softmax
probabilities with the one-hot (or soft) target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from lightning_cnn._utils.validation import check_choice, check_positive, check_probability, check_weights

__all__ = [
    "LOSSES",
    "LOSS_NAMES",
    "MULTILABEL_LOSSES",
    "ClassificationLoss",
    "LossMixture",
    "LossName",
    "build_loss",
    "multilabel_loss",
    "to_probabilities",
]

LossName = Literal[
    "cross_entropy", "weighted_cross_entropy", "sigmoid_cross_entropy", "kl_div", "pseudo_huber", "l1", "mse"
]
LOSS_NAMES: tuple[str, ...] = get_args(LossName)
LOSSES = LOSS_NAMES
#: The losses of a multi-label task (a sigmoid per label); the others need one class per image.
MULTILABEL_LOSSES: tuple[str, ...] = ("sigmoid_cross_entropy",)


def to_probabilities(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Turn class indices ``[B]`` into one-hot float ``[B, K]``; pass float targets through."""
    if target.is_floating_point():
        return target
    return F.one_hot(target, num_classes).float()


class ClassificationLoss(nn.Module):
    """One named loss between logits and targets.

    Args:
        name: one of :data:`LOSSES`.
        label_smoothing: for the cross-entropies, in ``[0, 1)``.
        class_weights: per-class weights for ``"weighted_cross_entropy"`` (length ``num_classes``).
        pos_weight: positive-class weight of ``"sigmoid_cross_entropy"``, one number or one per class.
        delta: the transition point of ``"pseudo_huber"``.
        num_classes: the number of classes, to check the length of ``class_weights`` and ``pos_weight``;
            ``None``: not checked.

    Raises:
        ValueError: for an unknown name, an out-of-range option, or weights of another length than
            ``num_classes``.
        TypeError: for weights that are not numbers.

    Example:
        >>> loss = ClassificationLoss("cross_entropy")
        >>> round(loss(torch.zeros(2, 4), torch.tensor([0, 3])).item(), 4)  # log(4)
        1.3863
    """

    def __init__(
        self,
        name: str,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        pos_weight: float | Sequence[float] | None = None,
        delta: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.name = check_choice("loss", name, LOSSES)
        check_probability("label_smoothing", label_smoothing)
        check_positive("huber_delta", delta)
        self.label_smoothing = label_smoothing
        self.delta = delta
        if name == "weighted_cross_entropy" and class_weights is None:
            raise ValueError(
                "loss='weighted_cross_entropy' needs class_weights: a list with one weight per class, or"
                " 'balanced' to compute them from the training labels."
            )
        weight = check_weights("class_weights", class_weights, num_classes)
        pw = check_weights("pos_weight", pos_weight, num_classes, scalar=True)
        self.class_weights: torch.Tensor | None
        self.pos_weight: torch.Tensor | None
        self.register_buffer("class_weights", weight, persistent=False)
        self.register_buffer("pos_weight", pw, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        name = self.name
        if name in ("cross_entropy", "weighted_cross_entropy"):
            weight = self.class_weights if name == "weighted_cross_entropy" else None
            if weight is not None:
                weight = weight.to(logits.dtype)
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing)
        target_p = to_probabilities(target, logits.shape[-1]).to(logits.dtype)
        if name == "sigmoid_cross_entropy":
            pos_weight = self.pos_weight.to(logits.dtype) if self.pos_weight is not None else None
            return F.binary_cross_entropy_with_logits(logits, target_p, pos_weight=pos_weight)
        if name == "kl_div":
            return F.kl_div(logits.log_softmax(-1), target_p, reduction="batchmean")
        probs = logits.softmax(-1)
        if name == "pseudo_huber":
            d2 = self.delta**2
            return (d2 * (torch.sqrt(1 + (probs - target_p) ** 2 / d2) - 1)).mean()
        if name == "l1":
            return F.l1_loss(probs, target_p)
        return F.mse_loss(probs, target_p)

    def extra_repr(self) -> str:
        return repr(self.name)


class LossMixture(nn.Module):
    """A weighted sum of named losses, e.g. ``{"cross_entropy": 1.0, "mse": 0.5}``.

    Example:
        >>> mix = LossMixture({"cross_entropy": 1.0, "mse": 0.5})
        >>> logits, y = torch.randn(3, 5), torch.tensor([0, 1, 2])
        >>> expected = F.cross_entropy(logits, y) + 0.5 * F.mse_loss(logits.softmax(-1), F.one_hot(y, 5).float())
        >>> torch.allclose(mix(logits, y), expected)
        True
    """

    def __init__(self, weights: Mapping[str, float], **options: Any) -> None:
        super().__init__()
        if not weights:
            raise ValueError("Expected loss to name at least one loss, but got an empty mapping.")
        for name, w in weights.items():
            check_choice("loss", name, LOSSES)
            check_positive(f"loss[{name!r}]", w, allow_zero=True)
        self.weights = dict(weights)
        self.losses = nn.ModuleDict({name: ClassificationLoss(name, **options) for name in weights})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = [w * self.losses[name](logits, target) for name, w in self.weights.items()]
        return torch.stack(terms).sum()


def build_loss(spec: str | Mapping[str, float], **options: Any) -> nn.Module:
    """Build a loss from a name or a ``{name: weight}`` mapping.

    Args:
        spec: a name from :data:`LOSSES`, or a mapping of names to weights.
        options: ``label_smoothing``, ``class_weights``, ``pos_weight``, ``delta``, ``num_classes`` (see
            :class:`ClassificationLoss`).

    Raises:
        ValueError: for unknown names; the message lists the valid ones.

    Example:
        >>> build_loss("mse")
        ClassificationLoss('mse')
    """
    if isinstance(spec, Mapping):
        if len(spec) == 1 and next(iter(spec.values())) == 1.0:
            return ClassificationLoss(next(iter(spec)), **options)
        return LossMixture(spec, **options)
    return ClassificationLoss(spec, **options)


def multilabel_loss(spec: str | Mapping[str, float]) -> str | dict[str, float]:
    """The loss of a multi-label task for ``spec``: ``"cross_entropy"`` (the default) becomes the sigmoid one.

    Raises:
        ValueError: naming a loss of ``spec`` that needs one class per image (a softmax over the classes).

    Example:
        >>> multilabel_loss("cross_entropy")
        'sigmoid_cross_entropy'
        >>> multilabel_loss("kl_div")
        Traceback (most recent call last):
        ...
        ValueError: Expected loss to be one of ('sigmoid_cross_entropy',) (or 'cross_entropy', which means it) \
for multi-label data (a 0/1 label matrix [N, L]), but got 'kl_div': it compares softmax probabilities over \
the classes, where each label is its own yes/no question.
    """
    names = dict(spec) if isinstance(spec, Mapping) else {spec: 1.0}
    mapped: dict[str, float] = {}
    for name, weight in names.items():
        name = "sigmoid_cross_entropy" if name == "cross_entropy" else name
        if name not in MULTILABEL_LOSSES:
            raise ValueError(
                f"Expected loss to be one of {MULTILABEL_LOSSES} (or 'cross_entropy', which means it) for multi-label"
                f" data (a 0/1 label matrix [N, L]), but got {name!r}: it compares softmax probabilities over the"
                " classes, where each label is its own yes/no question."
            )
        mapped[name] = mapped.get(name, 0.0) + weight
    if not isinstance(spec, Mapping):
        return next(iter(mapped))
    return mapped
