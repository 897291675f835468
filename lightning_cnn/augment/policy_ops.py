"""The operations of the automatic augmentation policies, batched: each sample its own magnitude.

:func:`apply_op` runs one named operation (``"Rotate"``, ``"Solarize"``, ...) on a batch with one magnitude
per sample, as torchvision's ``RandAugment`` / ``TrivialAugmentWide`` / ``AutoAugment`` apply it to one
image: the geometric ones are one ``affine_grid`` + ``grid_sample`` for the batch (the same inverse maps
and pixel-centre conventions as ``torchvision.transforms.v2.functional.affine``), the colour ones broadcast
a per-sample factor, and ``AutoContrast`` / ``Equalize`` call torchvision's batch kernels.
:func:`apply_ops` runs a different operation on each sample, grouping the samples by operation.
Inputs are float images ``[B, C, H, W]`` in ``[0, 1]``; they are never modified in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from lightning_cnn.augment.color import grayscale

__all__ = ["GEOMETRIC_OPS", "OP_NAMES", "Interpolation", "OpName", "apply_op", "apply_ops"]

OpName = Literal[
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
]
OP_NAMES: tuple[str, ...] = get_args(OpName)
GEOMETRIC_OPS: tuple[str, ...] = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
Interpolation = Literal["nearest", "bilinear"]


def _factor(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return m.to(x.dtype).view(-1, 1, 1, 1)


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    return (x * ratio + other * (1 - ratio)).clamp(0, 1)


def _theta(names: list[str], m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per-sample ``[n, 2, 3]`` maps from output to input, in ``affine_grid``'s normalized coordinates.

    Each sample's map in pixel units about the image centre, ``[[a, b, c], [d, e, f]]``, is the one
    torchvision's op uses; in normalized coordinates it reads ``[[a, b h/w, 2c/w], [d w/h, e, 2f/h]]``.
    """
    n = m.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=torch.float32, device=m.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    m = m.to(torch.float32)
    kind = torch.tensor([GEOMETRIC_OPS.index(name) for name in names], device=m.device)
    zero = torch.zeros_like(m)
    shear_x, shear_y, shift_x, shift_y, rotate = (kind == i for i in range(len(GEOMETRIC_OPS)))
    a = torch.deg2rad(torch.where(rotate, m, zero))
    cos, sin = torch.cos(a), torch.sin(a)
    # ShearX and ShearY shear about the top-left corner, as torchvision's ops do; shifts are whole pixels.
    b = torch.where(shear_x, m, -sin)
    c = torch.where(shear_x, m * h / 2, torch.where(shift_x, -torch.trunc(m), zero))
    d = torch.where(shear_y, m, sin)
    f = torch.where(shear_y, m * w / 2, torch.where(shift_y, -torch.trunc(m), zero))
    theta[:, 0, 0], theta[:, 1, 1] = cos, cos
    theta[:, 0, 1], theta[:, 0, 2] = b * h / w, c * 2 / w
    theta[:, 1, 0], theta[:, 1, 2] = d * w / h, f * 2 / h
    return theta


def _geometric(x: torch.Tensor, names: list[str], m: torch.Tensor, interpolation: str) -> torch.Tensor:
    """The geometric ops of ``names`` (one per sample) as one ``affine_grid`` + ``grid_sample``."""
    n, c, h, w = x.shape
    grid = F.affine_grid(_theta(names, m, h, w).to(x.dtype), [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)


def _sharpness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    c, h, w = x.shape[1:]
    if h <= 2 or w <= 2:
        return x.clone()
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / 13.0).expand(c, 1, 3, 3)
    blurred = F.conv2d(x, kernel, groups=c)
    inner = x[..., 1:-1, 1:-1]
    out = x.clone()
    out[..., 1:-1, 1:-1] = inner + (blurred - inner) * (1 - _factor(1 + m, x))
    return out.clamp(0, 1)


def _posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    levels = _factor(torch.pow(2.0, torch.trunc(m.to(torch.float64))), x)
    return (x * levels).floor().clamp(min=torch.zeros_like(levels), max=levels - 1) / levels


def _autocontrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.autocontrast(x)


def _equalize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.equalize(x)


_COLOR_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Identity": lambda x, m: x.clone(),
    "Brightness": lambda x, m: (x * _factor(1 + m, x)).clamp(0, 1),
    "Color": lambda x, m: _blend(x, grayscale(x), _factor(1 + m, x)) if x.shape[1] == 3 else x.clone(),
    "Contrast": lambda x, m: _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), _factor(1 + m, x)),
    "Sharpness": _sharpness,
    "Posterize": _posterize,
    "Solarize": lambda x, m: torch.where(x >= _factor(m, x), 1 - x, x),
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Invert": lambda x, m: 1 - x,
}

if set(_COLOR_OPS) | set(GEOMETRIC_OPS) != set(OP_NAMES):
    raise RuntimeError(f"The operations {sorted(_COLOR_OPS) + list(GEOMETRIC_OPS)} disagree with OpName {OP_NAMES}.")


def apply_op(
    x: torch.Tensor, name: str, magnitude: torch.Tensor, interpolation: Interpolation = "nearest"
) -> torch.Tensor:
    """Apply the operation ``name`` to every sample of ``x``, each with its own magnitude.

    Magnitudes mean what they mean to torchvision's policies: a shear factor (``ShearX``: ``tan`` of the
    angle), pixels (``TranslateX``, truncated to whole pixels), degrees (``Rotate``), ``factor - 1``
    (``Brightness``, ``Color``, ``Contrast``, ``Sharpness``), bits (``Posterize``), a threshold in ``[0, 1]``
    (``Solarize``); ``Identity``, ``AutoContrast``, ``Equalize`` and ``Invert`` ignore theirs. Areas that a
    geometric operation brings in from outside the image are 0.

    Args:
        x: float images in ``[0, 1]``.
        name: one of :data:`OP_NAMES`.
        magnitude: one magnitude per sample.
        interpolation: resampling of the geometric operations.

    Shape:
        - x: ``[B, C, H, W]``; magnitude: ``[B]``; output: ``[B, C, H, W]``.

    Example:
        >>> x = torch.tensor([[[[0.2, 0.8]]], [[[0.2, 0.8]]]])
        >>> apply_op(x, "Solarize", torch.tensor([0.5, 1.0]))[:, 0, 0]
        tensor([[0.2000, 0.2000],
                [0.2000, 0.8000]])
    """
    if name in GEOMETRIC_OPS:
        return _geometric(x, [name] * x.shape[0], magnitude, interpolation)
    if name not in _COLOR_OPS:
        raise ValueError(f"Expected name to be one of {OP_NAMES}, but got {name!r}.")
    return _COLOR_OPS[name](x, magnitude)


def apply_ops(
    x: torch.Tensor, ops: torch.Tensor, magnitude: torch.Tensor, interpolation: Interpolation = "nearest"
) -> torch.Tensor:
    """Apply to each sample the operation ``OP_NAMES[ops[i]]`` with magnitude ``magnitude[i]``.

    The samples are grouped by operation: one batched :func:`apply_op` call per colour operation drawn, and
    one ``grid_sample`` for all the samples that drew a geometric operation.

    Shape:
        - x: ``[B, C, H, W]``; ops (int64) and magnitude: ``[B]``; output: ``[B, C, H, W]``.
    """
    out = x  # copied once, at the first operation other than Identity; then written in place, row groups only
    drawn = ops.unique().tolist()
    geometric = [OP_NAMES.index(name) for name in GEOMETRIC_OPS]
    if any(k in geometric for k in drawn):
        sel = torch.isin(ops, torch.tensor(geometric, device=ops.device)).nonzero().squeeze(1)
        names = [OP_NAMES[k] for k in ops.index_select(0, sel).tolist()]
        done = _geometric(x.index_select(0, sel), names, magnitude.index_select(0, sel), interpolation)
        out = x.clone()
        out.index_copy_(0, sel, done.to(x.dtype))
    for k in drawn:
        if OP_NAMES[k] == "Identity" or k in geometric:
            continue
        sel = (ops == k).nonzero().squeeze(1)
        done = apply_op(x.index_select(0, sel), OP_NAMES[k], magnitude.index_select(0, sel), interpolation)
        if out is x:
            out = x.clone()
        out.index_copy_(0, sel, done.to(x.dtype))
    return out
