"""A sequence of batched transforms that shares one resampling among consecutive geometric ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_cnn.augment.base import BatchTransform, check_images, warp

__all__ = ["BatchAugmentation"]


class BatchAugmentation(nn.Module):
    """A sequence of batched transforms; consecutive geometric ones share one ``grid_sample``.

    Args:
        transforms: the transforms, applied in order.

    Example:
        >>> from lightning_cnn.augment.geometry import HorizontalFlip, RandomAffine, RandomRotation
        >>> aug = BatchAugmentation([HorizontalFlip(0.5), RandomRotation(10), RandomAffine(0, (0.1, 0.1))])
        >>> x = torch.rand(8, 1, 8, 8)
        >>> y = aug(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape, torch.equal(aug(x, generator=torch.Generator().manual_seed(0)), y)
        (torch.Size([8, 1, 8, 8]), True)
    """

    def __init__(self, transforms: Sequence[BatchTransform]) -> None:
        super().__init__()
        for t in transforms:
            if not isinstance(t, BatchTransform):
                raise TypeError(f"Expected BatchTransform instances, but got {type(t).__name__}.")
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``[B, C, H, W]`` (float, in ``[0, 1]``) with independent parameters per sample."""
        check_images(x)
        theta: torch.Tensor | None = None
        apply: torch.Tensor | None = None
        for t in self.transforms:
            assert isinstance(t, BatchTransform)
            params = t.make_params(x, generator)
            if t.geometric:
                m = t.matrix(x, params)
                theta = m if theta is None else theta @ m
                apply = params["apply"] if apply is None else apply | params["apply"]
                continue
            if theta is not None and apply is not None:
                x, theta, apply = warp(x, theta, apply), None, None
            x = t.transform(x, params)
        if theta is not None and apply is not None:
            x = warp(x, theta, apply)
        return x

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        """The same transforms as a per-sample torchvision v2 ``Compose`` (for loader workers)."""
        from torchvision.transforms import v2

        return v2.Compose([t.to_torchvision(size) for t in self.transforms])  # type: ignore[operator]
