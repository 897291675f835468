"""Downsampling layers by name, and the global pooling in front of a classifier head."""

from __future__ import annotations

from torch import nn

from lightning_cnn._validation import check_choice

__all__ = ["GLOBAL_POOLS", "POOLS", "create_global_pool", "create_pool"]

POOLS = ("max", "avg", "fractional_max", "none")
GLOBAL_POOLS = ("avg", "max", "flatten")


def create_pool(name: str, kernel_size: int = 2) -> nn.Module:
    """Build a downsampling layer that halves height and width (``"none"`` is the identity).

    ``"fractional_max"`` is :class:`torch.nn.FractionalMaxPool2d` with an output ratio of 0.5
    (random pooling regions in training, works on odd sizes). With ``"none"`` the network downsamples
    by a strided convolution instead (see :class:`lightning_cnn.nn.ConvBlock`).

    Args:
        name: one of ``"max"``, ``"avg"``, ``"fractional_max"``, ``"none"``.
        kernel_size: window of ``"max"`` and ``"avg"`` (their stride is 2).

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> create_pool("avg")
        AvgPool2d(kernel_size=2, stride=2, padding=0)
    """
    check_choice("pool", name, POOLS)
    if name == "max":
        return nn.MaxPool2d(kernel_size, stride=2, ceil_mode=True)
    if name == "avg":
        return nn.AvgPool2d(kernel_size, stride=2, ceil_mode=True)
    if name == "fractional_max":
        return nn.FractionalMaxPool2d(2, output_ratio=0.5)
    return nn.Identity()


def create_global_pool(name: str) -> nn.Module:
    """Reduce ``[B, C, H, W]`` to ``[B, C]`` (``"avg"``, ``"max"``) or ``[B, C*H*W]`` (``"flatten"``).

    Example:
        >>> create_global_pool("max")
        Sequential(
          (0): AdaptiveMaxPool2d(output_size=1)
          (1): Flatten(start_dim=1, end_dim=-1)
        )
    """
    check_choice("global_pool", name, GLOBAL_POOLS)
    if name == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if name == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    return nn.Flatten()
