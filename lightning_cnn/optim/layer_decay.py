"""Layer-wise learning-rate decay: each stage of a network below the head at ``decay`` times the next one's rate."""

from __future__ import annotations

from collections.abc import Mapping

from torch.optim import Optimizer

__all__ = ["layer_decay_scales", "scale_param_groups"]


def layer_decay_scales(num_stages: int, decay: float) -> list[float]:
    """Learning-rate factors of ``num_stages`` stages, from the stem (first) to the last: ``decay ** (n - i)``.

    The head, above the last stage, has factor 1; the last stage ``decay``, the one before ``decay ** 2``, and so on
    down to the stem (the rule of timm's ``param_groups_layer_decay``, over the stages given).

    Example:
        >>> layer_decay_scales(3, 0.5)
        [0.125, 0.25, 0.5]
    """
    return [decay ** (num_stages - i) for i in range(num_stages)]


def scale_param_groups(optimizer: Optimizer, scales: Mapping[int, float]) -> None:
    """Split ``optimizer``'s groups in place so that each parameter runs at ``scales[id(p)]`` times its group's rate.

    Parameters whose factor is 1 (or that ``scales`` does not name) stay in their group; the others move to new
    groups, one for each original group and factor, with every other setting of the original group (its weight
    decay, ...) and ``lr`` (and ``initial_lr``) multiplied by the factor. New groups come after the original ones,
    in the order of the groups and then of decreasing factor. Call it before the first step and before a scheduler
    is built, so the scheduler schedules every group and keeps their ratios.

    Example:
        >>> import torch
        >>> a, b, c = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
        >>> opt = torch.optim.SGD([{"params": [a, b, c], "weight_decay": 0.0}], lr=0.1)
        >>> scale_param_groups(opt, {id(b): 0.5, id(c): 0.25})
        >>> [(len(g["params"]), g["lr"]) for g in opt.param_groups]
        [(1, 0.1), (1, 0.05), (1, 0.025)]
    """
    new_groups = []
    for group in optimizer.param_groups:
        by_factor: dict[float, list] = {}
        for p in group["params"]:
            by_factor.setdefault(scales.get(id(p), 1.0), []).append(p)
        group["params"] = by_factor.pop(1.0, [])
        for factor in sorted(by_factor, reverse=True):
            moved = {**group, "params": by_factor[factor], "lr": group["lr"] * factor}
            if "initial_lr" in group:
                moved["initial_lr"] = group["initial_lr"] * factor
            new_groups.append(moved)
    optimizer.param_groups = [g for g in optimizer.param_groups if g["params"]]
    for g in new_groups:
        optimizer.add_param_group(g)
