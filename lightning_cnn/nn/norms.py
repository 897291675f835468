"""Normalization layers for conv feature maps by name."""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from lightning_cnn._utils.validation import check_choice

__all__ = ["NORMS", "NORM_NAMES", "NormName", "create_norm"]

NormName = Literal["batch", "layer", "instance", "group", "none"]
NORM_NAMES: tuple[str, ...] = get_args(NormName)
NORMS = NORM_NAMES


def create_norm(name: str, num_channels: int, groups: int = 8) -> nn.Module:
    """Build a normalization layer for ``[B, C, H, W]`` feature maps.

    ``"layer"`` normalizes over channels and space of each sample (``GroupNorm`` with one group, which
    needs no spatial size); ``"instance"`` normalizes each channel of each sample, with learnable affine
    parameters; ``"group"`` uses ``min(groups, num_channels)`` groups, which must divide ``num_channels``.

    Args:
        name: one of ``"batch"``, ``"layer"``, ``"instance"``, ``"group"``, ``"none"``.
        num_channels: channels of the feature map.
        groups: group count for ``"group"``.

    Raises:
        ValueError: for an unknown name, or a group count that does not divide the channels.

    Example:
        >>> norm = create_norm("group", 32, groups=4)
        >>> type(norm).__name__, norm.num_groups, norm.num_channels
        ('GroupNorm', 4, 32)
    """
    check_choice("norm", name, NORMS)
    if name == "batch":
        return nn.BatchNorm2d(num_channels)
    if name == "layer":
        return nn.GroupNorm(1, num_channels)
    if name == "instance":
        return nn.InstanceNorm2d(num_channels, affine=True)
    if name == "group":
        g = min(groups, num_channels)
        if g < 1 or num_channels % g:
            raise ValueError(f"Expected norm_groups to divide the channel count {num_channels}, but got {groups!r}.")
        return nn.GroupNorm(g, num_channels)
    return nn.Identity()
