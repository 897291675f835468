"""The view kernels: equal, to the bit, to the plain-torch kernels they replaced, and they never write the input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_cnn import functional

# The kernels as first written with torch alone: the torchvision-based ones must give the same tensors.


def _ref_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def _ref_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _ref_zoom_out(x: torch.Tensor, fraction: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = functional.crop_size(h, fraction), functional.crop_size(w, fraction)
    small = _ref_resize(x, (sh, sw))
    top, left = (h - sh) // 2, (w - sw) // 2
    return F.pad(small, (left, w - sw - left, top, h - sh - top))


def _ref_crop(x: torch.Tensor, corner: str, fraction: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = functional.crop_size(h, fraction), functional.crop_size(w, fraction)
    top = {"t": 0, "b": h - ch, "c": (h - ch) // 2}[corner[0]]
    left = {"l": 0, "r": w - cw, "c": (w - cw) // 2}[corner[1]]
    return _ref_resize(x[..., top : top + ch, left : left + cw], (h, w))


_IMAGES = {"seed": st.integers(0, 10_000), "h": st.integers(1, 12), "w": st.integers(1, 12)}


def _images(seed: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(**_IMAGES, dy=st.integers(-3, 3), dx=st.integers(-3, 3))
def test_shift_equals_pad_and_slice(seed, h, w, dy, dx):
    x = _images(seed, h, w)
    before = x.clone()
    assert torch.equal(functional.shift(x, dy, dx), _ref_shift(x, dy, dx))
    assert torch.equal(x, before)


@settings(max_examples=40, deadline=None)
@given(**_IMAGES, size=st.tuples(st.integers(1, 14), st.integers(1, 14)))
def test_resize_equals_bilinear_interpolate(seed, h, w, size):
    x = _images(seed, h, w)
    assert torch.equal(functional.resize(x, size), _ref_resize(x, size))


@settings(max_examples=40, deadline=None)
@given(**_IMAGES, fraction=st.floats(0.05, 1.0), corner=st.sampled_from(functional.CORNERS))
def test_crops_and_zooms_equal_the_torch_kernels(seed, h, w, fraction, corner):
    x = _images(seed, h, w)
    before = x.clone()
    assert torch.equal(functional.corner_crop(x, corner, fraction), _ref_crop(x, corner, fraction))
    assert torch.equal(functional.hflip_corner_crop(x, corner, fraction), _ref_crop(x.flip(-1), corner, fraction))
    assert torch.equal(functional.zoom_in(x, fraction), _ref_crop(x, "cc", fraction))
    assert torch.equal(functional.zoom_out(x, fraction), _ref_zoom_out(x, fraction))
    assert torch.equal(x, before)


def test_flips_rotations_and_transposes_equal_plain_tensor_ops():
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(functional.hflip(x), x.flip(-1))
    assert torch.equal(functional.vflip(x), x.flip(-2))
    assert torch.equal(functional.rotate90(x, 3), torch.rot90(x, 3, dims=(-2, -1)))
    assert torch.equal(functional.transpose(x), x.transpose(-2, -1))
    assert torch.equal(functional.anti_transpose(x), x.transpose(-2, -1).flip(-2, -1))
    assert functional.identity(x) is x
