"""The base of the batched transforms, and the per-sample random draws and resampling they share.

Every transform draws its parameters for each sample of a batch (:meth:`BatchTransform.make_params`)
and applies them in one vectorized call (:meth:`BatchTransform.transform`). Inputs are float images
``[B, C, H, W]`` in ``[0, 1]``; they are never modified in place.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_cnn._utils.validation import check_range

__all__ = ["BatchTransform", "Params", "check_images", "eye", "rand", "uniform", "warp"]

Params = dict[str, torch.Tensor]


def rand(n: int, x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) numbers ``[n, *shape]`` drawn from ``generator`` (or the global RNG), on ``x``'s device."""
    device = generator.device if generator is not None else x.device
    return torch.rand((n, *shape), generator=generator, device=device).to(x.device)


def uniform(n: int, low: float, high: float, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` numbers uniform in ``[low, high)``, one per sample, on ``x``'s device."""
    return low + (high - low) * rand(n, x, generator)


def check_images(x: torch.Tensor) -> None:
    """Refuse anything but a float batch of images ``[B, C, H, W]``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"Expected a batch of images [B, C, H, W], but got {getattr(x, 'shape', type(x))}.")
    if not x.is_floating_point():
        raise TypeError(f"Expected a float image batch in [0, 1], but got dtype {x.dtype}.")


def eye(n: int, x: torch.Tensor) -> torch.Tensor:
    """``n`` identity matrices ``[n, 3, 3]`` (float32) on ``x``'s device."""
    return torch.eye(3, device=x.device, dtype=torch.float32).expand(n, 3, 3).clone()


def warp(x: torch.Tensor, theta: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """Resample the samples selected by ``apply`` through ``theta`` ``[B, 3, 3]``; the others stay bit-exact."""
    if not bool(apply.any()):
        return x
    sel = apply.nonzero().squeeze(1)
    xs = x.index_select(0, sel)
    grid = F.affine_grid(theta.index_select(0, sel)[:, :2, :].to(x.dtype), list(xs.shape), align_corners=False)
    warped = F.grid_sample(xs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return x.index_copy(0, sel, warped)


class BatchTransform(nn.Module):
    """Base of the batched transforms: :meth:`make_params` draws per-sample parameters, :meth:`transform` applies.

    ``p`` is the probability that a sample is transformed, drawn independently for each sample.
    A geometric subclass instead implements :meth:`matrix` (one ``[B, 3, 3]`` matrix in normalized
    coordinates, output to input), so that a :class:`~lightning_cnn.augment.container.BatchAugmentation`
    can compose several into one grid.

    Args:
        p: probability of transforming each sample.
    """

    geometric: bool = False

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        self.p = check_range("p", p, 0, 1)

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        """Draw the random parameters of every sample of ``x``; ``apply`` says which samples change."""
        return {"apply": rand(x.shape[0], x, generator) < self.p}

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Apply the drawn parameters to ``x`` (a new tensor; ``x`` is unchanged)."""
        if self.geometric:
            return warp(x, self.matrix(x, params), params["apply"])
        raise NotImplementedError

    def matrix(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Per-sample ``[B, 3, 3]`` map from output to input normalized coordinates (identity where not applied)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform a batch ``[B, C, H, W]`` with independent random parameters per sample."""
        check_images(x)
        return self.transform(x, self.make_params(x, generator))

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        """The per-sample torchvision v2 transform that does the same, for loader workers."""
        raise NotImplementedError

    def _maybe_random_apply(self, t: Any) -> Any:
        from torchvision.transforms import v2

        return t if self.p >= 1.0 else v2.RandomApply([t], p=self.p)

    def extra_repr(self) -> str:
        args = inspect.signature(type(self)).parameters
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in args if hasattr(self, k))
