"""Downsampling layers by name, and the global pooling in front of a classifier head."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from lightning_cnn._utils.validation import check_choice

__all__ = [
    "GLOBAL_POOLS",
    "GLOBAL_POOL_NAMES",
    "POOLS",
    "POOL_NAMES",
    "FractionalMaxPool",
    "GlobalPoolName",
    "PoolName",
    "create_global_pool",
    "create_pool",
]

PoolName = Literal["max", "avg", "fractional_max", "none"]
POOL_NAMES: tuple[str, ...] = get_args(PoolName)
POOLS = POOL_NAMES
GlobalPoolName = Literal["avg", "max", "flatten"]
GLOBAL_POOL_NAMES: tuple[str, ...] = get_args(GlobalPoolName)
GLOBAL_POOLS = GLOBAL_POOL_NAMES


class FractionalMaxPool(nn.Module):
    """Fractional max pooling (Graham, 2014) that halves height and width, rounding up; any input size.

    In training, the pooling regions are drawn at random for every sample and channel, as in
    :class:`torch.nn.FractionalMaxPool2d`. In evaluation they are fixed (the middle of the random range),
    so the layer is deterministic; :class:`torch.nn.FractionalMaxPool2d` draws at random even in
    evaluation. The output size ``ceil(H / 2) × ceil(W / 2)`` matches ``"max"`` and ``"avg"`` pooling, so odd
    sizes (7×7 → 4×4) and a 1×1 input work.

    Shape:
        - Input: ``[B, C, H, W]``
        - Output: ``[B, C, ceil(H / 2), ceil(W / 2)]``

    Example:
        >>> pool = FractionalMaxPool().eval()
        >>> x = torch.randn(2, 3, 7, 9)
        >>> pool(x).shape, torch.equal(pool(x), pool(x))
        (torch.Size([2, 3, 4, 5]), True)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        samples = None
        if not self.training:
            samples = torch.full((*x.shape[:-2], 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(
            x,
            (min(2, h), min(2, w)),
            output_size=(math.ceil(h / 2), math.ceil(w / 2)),
            _random_samples=samples,
        )


def create_pool(name: str, kernel_size: int = 2) -> nn.Module:
    """Build a downsampling layer that halves height and width (``"none"`` is the identity).

    ``"fractional_max"`` is :class:`FractionalMaxPool` (random pooling regions in training, fixed ones in
    evaluation; works on odd sizes). With ``"none"`` the network downsamples
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
        return FractionalMaxPool()
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
