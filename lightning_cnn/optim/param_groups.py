"""Parameter groups: weights that decay, and biases and normalization parameters that do not."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

__all__ = ["output_layer", "param_groups"]


def param_groups(
    module: nn.Module, weight_decay: float, decay_all: bool = False, exclude: Iterable[nn.Parameter] = ()
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decaying group and a non-decaying group.

    Tensors with fewer than two dimensions (biases, normalization scales and shifts) get no weight decay
    unless ``decay_all``. Frozen parameters (``requires_grad=False``) and those in ``exclude`` are left out.
    Empty groups are dropped.

    Example:
        >>> groups = param_groups(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), weight_decay=0.1)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.1), (3, 0.0)]
    """
    skip = {id(p) for p in exclude}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in module.parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        (decay if decay_all or p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def output_layer(module: nn.Module) -> nn.Linear | None:
    """The last :class:`~torch.nn.Linear` of ``module`` in registration order (its classifier), or ``None``.

    Example:
        >>> output_layer(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
        Linear(in_features=4, out_features=2, bias=True)
    """
    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last
