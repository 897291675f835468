"""Deterministic views of an image batch, as pure tensor functions (the kernels of test-time augmentation).

Every function takes images ``[..., H, W]`` (a batch ``[B, C, H, W]`` as a rule), returns a new tensor or a
view of the input and never writes into it. Flips, crops and resizes go through
:mod:`torchvision.transforms.v2.functional`; rotations and transposes are plain tensor ops (exact, and torchvision
rotates by resampling).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

__all__ = [
    "CORNERS",
    "Corner",
    "anti_transpose",
    "corner_crop",
    "crop_size",
    "hflip",
    "hflip_corner_crop",
    "identity",
    "resize",
    "rotate90",
    "shift",
    "transpose",
    "vflip",
    "zoom_in",
    "zoom_out",
]

Corner = Literal["tl", "tr", "bl", "br", "cc"]
CORNERS: tuple[Corner, ...] = get_args(Corner)


def _tf():  # torchvision's tensor functions, imported on first use (not when the command line starts)
    import torchvision.transforms.v2.functional as tf

    return tf


def identity(x: torch.Tensor) -> torch.Tensor:
    """The images unchanged (the plain prediction among the views)."""
    return x


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror left to right."""
    return _tf().horizontal_flip(x)


def vflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror top to bottom."""
    return _tf().vertical_flip(x)


def rotate90(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate by ``k`` quarter turns counter-clockwise (``k < 0``: clockwise); exact, no resampling.

    Example:
        >>> rotate90(torch.arange(4.0).view(1, 1, 2, 2), 1)[0, 0].tolist()
        [[1.0, 3.0], [0.0, 2.0]]
    """
    return torch.rot90(x, k, dims=(-2, -1))


def transpose(x: torch.Tensor) -> torch.Tensor:
    """Mirror on the main diagonal (rows become columns)."""
    return x.transpose(-2, -1)


def anti_transpose(x: torch.Tensor) -> torch.Tensor:
    """Mirror on the other diagonal (top-right to bottom-left)."""
    return x.transpose(-2, -1).flip(-2, -1)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move the content ``dy`` pixels down and ``dx`` pixels right, filling with zeros (the mean, once normalized).

    Example:
        >>> shift(torch.arange(1.0, 4.0).view(1, 1, 1, 3), 0, 1)[0, 0, 0].tolist()
        [0.0, 1.0, 2.0]
    """
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:  # everything moves out (torchvision's crop pads a window wholly outside wrongly)
        return torch.zeros_like(x)
    return _tf().crop(x, -dy, -dx, h, w)  # a window partly outside the image: torchvision pads it with zeros


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size = (height, width)``, without antialiasing (half-pixel centres)."""
    return _tf().resize(x, list(size), interpolation=_tf().InterpolationMode.BILINEAR, antialias=False)


def crop_size(length: int, fraction: float) -> int:
    """Pixels kept of a side of ``length`` pixels by a crop of ``fraction`` of it: at least one, at most all."""
    return min(length, max(1, round(length * fraction)))


def zoom_in(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The centre crop of ``fraction`` of each side, resized back to the input size."""
    return corner_crop(x, "cc", fraction)


def zoom_out(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The images resized to ``fraction`` of each side, centred on a zero background of the input size."""
    h, w = x.shape[-2:]
    sh, sw = crop_size(h, fraction), crop_size(w, fraction)
    top, left = (h - sh) // 2, (w - sw) // 2
    return _tf().crop(resize(x, (sh, sw)), -top, -left, h, w)  # a window larger than the image: zero padding


def corner_crop(x: torch.Tensor, corner: Corner, fraction: float) -> torch.Tensor:
    """The crop of ``fraction`` of each side at ``corner`` (``"cc"``: the centre), resized back to the input size.

    The centre crop starts at ``(H - h) // 2`` (rounded down), where torchvision's ``center_crop`` rounds to the
    nearest pixel: the offsets are computed here and torchvision only crops.

    Example:
        >>> x = torch.arange(9.0).view(1, 1, 3, 3)
        >>> corner_crop(x, "br", 1 / 3)[0, 0].tolist()
        [[8.0, 8.0, 8.0], [8.0, 8.0, 8.0], [8.0, 8.0, 8.0]]
    """
    h, w = x.shape[-2:]
    ch, cw = crop_size(h, fraction), crop_size(w, fraction)
    top = {"t": 0, "b": h - ch, "c": (h - ch) // 2}[corner[0]]
    left = {"l": 0, "r": w - cw, "c": (w - cw) // 2}[corner[1]]
    return resize(_tf().crop(x, top, left, ch, cw), (h, w))


def hflip_corner_crop(x: torch.Tensor, corner: Corner, fraction: float) -> torch.Tensor:
    """:func:`corner_crop` of the mirrored images (the second half of a ten-crop)."""
    return corner_crop(hflip(x), corner, fraction)
