"""Colour batched transforms: brightness, contrast, saturation and hue, each sample its own factors."""

from __future__ import annotations

import math
from typing import Any

import torch

from lightning_cnn._utils.validation import check_range
from lightning_cnn.augment.base import BatchTransform, Params, uniform

__all__ = ["ColorJitter", "grayscale"]


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """The luma ``[B, 1, H, W]`` of a batch: torchvision's weights for RGB, the channel mean for other counts.

    Example:
        >>> grayscale(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    from torchvision.transforms.v2 import functional as TF  # first use only (not when the command line starts)

    return TF.rgb_to_grayscale(x)


class ColorJitter(BatchTransform):
    """Change brightness, contrast, saturation and hue of each sample by its own random factors.

    Factors are uniform in ``[1 - v, 1 + v]`` (brightness, contrast, saturation) and the hue shift in
    ``[-hue, hue]`` of a turn; they apply in that order, clamped to ``[0, 1]``. Saturation and hue
    change only three-channel images. The hue shift rotates the chroma plane (YIQ), a close, cheap
    stand-in for torchvision's HSV shift.

    Args:
        brightness: brightness jitter.
        contrast: contrast jitter.
        saturation: saturation jitter.
        hue: hue jitter, at most 0.5.
        p: probability of changing each sample.
    """

    def __init__(
        self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, hue: float = 0.0, p: float = 1.0
    ) -> None:
        super().__init__(p)
        self.brightness = check_range("brightness", brightness, 0, 1.0)
        self.contrast = check_range("contrast", contrast, 0, 1.0)
        self.saturation = check_range("saturation", saturation, 0, 1.0)
        self.hue = check_range("hue", hue, 0, 0.5)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        n = x.shape[0]
        params = super().make_params(x, generator)
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            params[name] = uniform(n, 1 - v, 1 + v, x, generator)
        params["hue"] = uniform(n, -self.hue, self.hue, x, generator)
        return params

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        def f(name: str) -> torch.Tensor:
            return params[name].to(x.dtype).view(-1, 1, 1, 1)

        out = x
        if self.brightness:
            out = (out * f("brightness")).clamp(0, 1)
        if self.contrast:
            m = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
            out = ((out - m) * f("contrast") + m).clamp(0, 1)
        if x.shape[1] == 3 and self.saturation:
            g = grayscale(out)
            out = ((out - g) * f("saturation") + g).clamp(0, 1)
        if x.shape[1] == 3 and self.hue:
            out = _rotate_hue(out, f("hue") * 2 * math.pi).clamp(0, 1)
        return torch.where(params["apply"].view(-1, 1, 1, 1), out, x)

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return self._maybe_random_apply(v2.ColorJitter(self.brightness, self.contrast, self.saturation, self.hue))


_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(_RGB2YIQ, device=x.device, dtype=x.dtype)
    yiq = torch.einsum("ij,bjhw->bihw", m, x)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i, q = yiq[:, 1:2], yiq[:, 2:3]
    yiq = torch.cat([yiq[:, :1], i * cos - q * sin, i * sin + q * cos], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yiq)
