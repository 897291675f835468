"""Noise batched transforms: Gaussian pixel noise and random erasing, each sample its own draw."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lightning_cnn._utils.validation import check_range, check_range_pair
from lightning_cnn.augment.base import BatchTransform, Params, rand, uniform

__all__ = ["GaussianNoise", "RandomErasing"]


class GaussianNoise(BatchTransform):
    """Add zero-mean Gaussian noise of standard deviation ``std`` to each pixel, clamped to ``[0, 1]``.

    Args:
        std: standard deviation of the noise.
        p: probability of adding noise to each sample.
    """

    def __init__(self, std: float = 0.05, p: float = 1.0) -> None:
        super().__init__(p)
        self.std = check_range("std", std, 0, 10.0)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        params = super().make_params(x, generator)
        device = generator.device if generator is not None else x.device
        params["noise"] = torch.randn(x.shape, generator=generator, device=device).to(x.device, x.dtype)
        return params

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        out = (x + params["noise"] * self.std).clamp(0, 1)
        return torch.where(params["apply"].view(-1, 1, 1, 1), out, x)

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return self._maybe_random_apply(v2.GaussianNoise(mean=0.0, sigma=self.std, clip=True))


class RandomErasing(BatchTransform):
    """Set a random box of each sample to ``value`` with probability ``p``, as in ``v2.RandomErasing``.

    Args:
        p: probability of erasing a box of each sample.
        scale: range of the box's share of the image area.
        ratio: range of the box's aspect ratio, sampled log-uniformly.
        value: fill value.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0.0,
    ) -> None:
        super().__init__(p)
        self.scale = check_range_pair("scale", scale, 0.0, 1.0)
        self.ratio = check_range_pair("ratio", ratio, 1e-3, 1e3)
        self.value = float(value)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        n, _, h, w = x.shape
        params = super().make_params(x, generator)
        area = uniform(n, self.scale[0], self.scale[1], x, generator) * h * w
        r = torch.exp(uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), x, generator))
        eh = torch.sqrt(area / r).round().clamp(1, h)
        ew = torch.sqrt(area * r).round().clamp(1, w)
        params["top"] = (rand(n, x, generator) * (h - eh + 1)).floor()
        params["left"] = (rand(n, x, generator) * (w - ew + 1)).floor()
        params["height"], params["width"] = eh, ew
        return params

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        _, _, h, w = x.shape
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        top, left = params["top"].view(-1, 1, 1), params["left"].view(-1, 1, 1)
        box = (rows >= top) & (rows < top + params["height"].view(-1, 1, 1))
        box = box & (cols >= left) & (cols < left + params["width"].view(-1, 1, 1))
        box = box & params["apply"].view(-1, 1, 1)
        return torch.where(box.unsqueeze(1), torch.full_like(x, self.value), x)

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return v2.RandomErasing(self.p, scale=self.scale, ratio=self.ratio, value=self.value)
