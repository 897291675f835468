"""Geometric batched transforms: flips, affine, rotation and random resized crop, each sample its own draw.

Flips are masks; rotation, affine and random resized crop give one ``[B, 3, 3]`` matrix per batch
(:meth:`~lightning_cnn.augment.base.BatchTransform.matrix`), so that consecutive geometric transforms
compose into a single ``F.affine_grid`` + ``F.grid_sample``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lightning_cnn._utils.validation import check_pair, check_range, check_range_pair
from lightning_cnn.augment.base import BatchTransform, Params, eye, rand, uniform

__all__ = ["HorizontalFlip", "RandomAffine", "RandomResizedCrop", "RandomRotation", "VerticalFlip"]


class HorizontalFlip(BatchTransform):
    """Mirror left-right each sample with probability ``p``.

    Args:
        p: probability of flipping each sample.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> HorizontalFlip(p=1.0)(x)[0, 0]
        tensor([[1., 0.],
                [3., 2.]])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return torch.where(params["apply"].view(-1, 1, 1, 1), x.flip(-1), x)

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return v2.RandomHorizontalFlip(self.p)


class VerticalFlip(HorizontalFlip):
    """Mirror top-bottom each sample with probability ``p``.

    Args:
        p: probability of flipping each sample.
    """

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return torch.where(params["apply"].view(-1, 1, 1, 1), x.flip(-2), x)

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return v2.RandomVerticalFlip(self.p)


class RandomAffine(BatchTransform):
    """Rotate, translate, scale and shear each sample by its own random amounts, as in ``v2.RandomAffine``.

    Per sample: angle uniform in ``[-degrees, degrees]``, shift uniform in ``±translate`` (fractions of
    width and height), scale uniform in ``scale``, x-shear uniform in ``[-shear, shear]`` degrees; the
    image turns about its centre, with zeros filling in (bilinear sampling).

    Args:
        degrees: largest rotation angle in degrees.
        translate: largest shift as fractions ``(of width, of height)``.
        scale: range of the zoom factor.
        shear: largest x-shear angle in degrees.
        p: probability of transforming each sample.

    Example:
        >>> x = torch.rand(4, 3, 16, 16)
        >>> RandomAffine(degrees=10, translate=(0.1, 0.1))(x).shape
        torch.Size([4, 3, 16, 16])
    """

    geometric = True

    def __init__(
        self,
        degrees: float = 10.0,
        translate: Sequence[float] = (0.1, 0.1),
        scale: Sequence[float] = (0.9, 1.1),
        shear: float = 0.0,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        self.degrees = check_range("degrees", degrees, 0, 180.0)
        dx, dy = check_pair("translate", translate, "(dx, dy)")
        self.translate = (check_range("translate", dx, 0, 1.0), check_range("translate", dy, 0, 1.0))
        self.scale = check_range_pair("scale", scale, 1e-3, 1e3)
        self.shear = check_range("shear", shear, 0, 89.0)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        n = x.shape[0]
        params = super().make_params(x, generator)
        params["angle"] = uniform(n, -self.degrees, self.degrees, x, generator)
        params["tx"] = uniform(n, -self.translate[0], self.translate[0], x, generator)
        params["ty"] = uniform(n, -self.translate[1], self.translate[1], x, generator)
        params["scale"] = uniform(n, self.scale[0], self.scale[1], x, generator)
        params["shear"] = uniform(n, -self.shear, self.shear, x, generator)
        return params

    def matrix(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        n, _, h, w = x.shape
        a = torch.deg2rad(params["angle"])
        sh = torch.tan(torch.deg2rad(params["shear"]))
        s = params["scale"]
        cos, sin = torch.cos(a), torch.sin(a)
        # Forward map in centred pixel units: translate . rotate . shear . scale.
        fwd = eye(n, x)
        fwd[:, 0, 0] = cos * s
        fwd[:, 0, 1] = (cos * sh - sin) * s
        fwd[:, 1, 0] = sin * s
        fwd[:, 1, 1] = (sin * sh + cos) * s
        fwd[:, 0, 2] = params["tx"] * w
        fwd[:, 1, 2] = params["ty"] * h
        d = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=x.device))
        d_inv = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=x.device))
        theta = d_inv @ torch.linalg.inv(fwd) @ d
        return torch.where(params["apply"].view(-1, 1, 1), theta, eye(n, x))

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import InterpolationMode, v2

        shear = [-self.shear, self.shear] if self.shear else None
        return self._maybe_random_apply(
            v2.RandomAffine(
                self.degrees,
                translate=self.translate if any(self.translate) else None,
                scale=self.scale,
                shear=shear,
                interpolation=InterpolationMode.BILINEAR,
            )
        )


class RandomRotation(RandomAffine):
    """Rotate each sample by its own angle, uniform in ``[-degrees, degrees]``, about the centre.

    Args:
        degrees: largest rotation angle in degrees.
        p: probability of rotating each sample.
    """

    def __init__(self, degrees: float = 15.0, p: float = 1.0) -> None:
        super().__init__(degrees=degrees, translate=(0.0, 0.0), scale=(1.0, 1.0), shear=0.0, p=p)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, p={self.p}"

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import InterpolationMode, v2

        return self._maybe_random_apply(v2.RandomRotation(self.degrees, interpolation=InterpolationMode.BILINEAR))


class RandomResizedCrop(BatchTransform):
    """Crop a random box of each sample (area share in ``scale``, aspect ratio in ``ratio``) back to full size.

    Args:
        scale: range of the box's share of the image area.
        ratio: range of the box's aspect ratio (width / height), sampled log-uniformly.
        p: probability of cropping each sample.
    """

    geometric = True

    def __init__(
        self, scale: Sequence[float] = (0.5, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3), p: float = 1.0
    ) -> None:
        super().__init__(p)
        self.scale = check_range_pair("scale", scale, 1e-6, 1.0)
        self.ratio = check_range_pair("ratio", ratio, 1e-3, 1e3)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        n, _, h, w = x.shape
        params = super().make_params(x, generator)
        area = uniform(n, self.scale[0], self.scale[1], x, generator)
        log_r = uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), x, generator)
        r = torch.exp(log_r) * (h / w)  # aspect in units of the image's own sides
        bw = torch.sqrt(area * r).clamp(max=1.0)
        bh = torch.sqrt(area / r).clamp(max=1.0)
        params["bw"], params["bh"] = bw, bh
        params["cx"] = (2 * rand(n, x, generator) - 1) * (1 - bw)
        params["cy"] = (2 * rand(n, x, generator) - 1) * (1 - bh)
        return params

    def matrix(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        theta = eye(x.shape[0], x)
        theta[:, 0, 0], theta[:, 1, 1] = params["bw"], params["bh"]
        theta[:, 0, 2], theta[:, 1, 2] = params["cx"], params["cy"]
        return torch.where(params["apply"].view(-1, 1, 1), theta, eye(x.shape[0], x))

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        return self._maybe_random_apply(v2.RandomResizedCrop(list(size), scale=self.scale, ratio=self.ratio))
