"""The operations of the automatic augmentation policies, batched: each sample its own magnitude.

:func:`apply_op` runs one named operation (``"Rotate"``, ``"Solarize"``, ...) on a batch with one magnitude
per sample, as torchvision's ``RandAugment`` / ``TrivialAugmentWide`` / ``AutoAugment`` apply it to one
image: the geometric ones are one ``grid_sample`` for the batch (``affine_grid``'s grid, the same inverse maps
and pixel-centre conventions as ``torchvision.transforms.v2.functional.affine``), ``Brightness`` / ``Color`` /
``Contrast`` / ``Sharpness`` one blend with per-sample factors, ``Equalize`` a per-channel look-up table
computed for the whole batch at once, ``AutoContrast`` torchvision's batch kernel.
:func:`apply_ops` runs a different operation on each sample, grouping the samples by operation.
Inputs are float images ``[B, C, H, W]`` in ``[0, 1]``; they are never modified in place. Every operation is
tested against torchvision's on the same images (``tests/unit/augment/test_policies.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from lightning_cnn.augment.color import grayscale

__all__ = ["ENHANCE_OPS", "GEOMETRIC_OPS", "OP_NAMES", "Interpolation", "OpName", "apply_op", "apply_ops"]

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
ENHANCE_OPS: tuple[str, ...] = ("Brightness", "Color", "Contrast", "Sharpness")
Interpolation = Literal["nearest", "bilinear"]


def _factor(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return m.to(x.dtype).view(-1, 1, 1, 1)


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``clamp(ratio x + (1 - ratio) other, 0, 1)``, torchvision's blend, as one ``lerp``."""
    return torch.lerp(other, x, ratio).clamp_(0, 1)


@functools.lru_cache(maxsize=16)
def _geometry(h: int, w: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The constants of :func:`_geometric` for one image size: per-operation tables and the pixel centres.

    Each sample's map from output to input, in pixel units about the image centre, ``[[a, b, c], [d, e, f]]``,
    is the one torchvision's op uses; in ``grid_sample``'s normalized coordinates it reads
    ``[[a, b h/w, 2c/w], [d w/h, e, 2f/h]]``. Those six numbers are linear in four features of the magnitude
    ``m``, ``(cos r, sin r, m, trunc(m))`` with ``r`` the rotation in radians (0 unless ``Rotate``), through one
    ``[4, 6]`` table per operation: ``weights[K, 4, 6]``, columns ordered ``(a, d, b, e, c, f)``.
    ShearX and ShearY shear about the top-left corner, as torchvision's do; shifts are whole pixels.

    Returns:
        ``radians`` ``[K]`` (degrees to radians for ``Rotate``, else 0), ``weights`` ``[K, 4, 6]``, and the
        pixel centres ``cols`` ``[1, 1, W, 1]`` and ``rows`` ``[1, H, 1, 1]`` (``(2i + 1) / W - 1``, as
        ``affine_grid`` with ``align_corners=False``).
    """
    weights = torch.zeros(len(GEOMETRIC_OPS), 4, 6, dtype=torch.float64)
    weights[:, 0, 0] = weights[:, 0, 3] = 1.0  # cos r: a, e
    weights[:, 1, 1], weights[:, 1, 2] = w / h, -h / w  # sin r: d, b
    shear_x, shear_y, shift_x, shift_y, rotate = range(len(GEOMETRIC_OPS))
    weights[shear_x, 2, 2] = weights[shear_x, 2, 4] = h / w  # b = m, c = m h / 2
    weights[shear_y, 2, 1] = weights[shear_y, 2, 5] = w / h  # d = m, f = m w / 2
    weights[shift_x, 3, 4], weights[shift_y, 3, 5] = -2 / w, -2 / h  # c, f = -trunc(m)
    radians = torch.zeros(len(GEOMETRIC_OPS), dtype=torch.float64)
    radians[rotate] = math.pi / 180
    cols = (torch.arange(w, dtype=torch.float64) * 2 + 1) / w - 1
    rows = (torch.arange(h, dtype=torch.float64) * 2 + 1) / h - 1
    tables = (radians, weights, cols.view(1, 1, w, 1), rows.view(1, h, 1, 1))
    return tuple(t.to(dtype=dtype, device=device) for t in tables)


def _geometric(x: torch.Tensor, kind: torch.Tensor, m: torch.Tensor, interpolation: str) -> torch.Tensor:
    """The geometric ops ``GEOMETRIC_OPS[kind[i]]`` (one per sample) as one ``grid_sample``.

    The sampling grid is ``affine_grid``'s, built by broadcasting each sample's six coefficients over the pixel
    centres (:func:`_geometry`): at 32×32 it takes less than half the time of ``affine_grid``'s batched matrix
    product, and the coefficients are one small product of tables, not an expression per operation.
    """
    n, _, h, w = x.shape
    radians, weights, cols, rows = _geometry(h, w, torch.float32, x.device)
    m = m.to(torch.float32)
    r = m * radians[kind]
    features = torch.stack((torch.cos(r), torch.sin(r), m, torch.trunc(m)), dim=1)
    coefficients = (features.unsqueeze(-1) * weights[kind]).sum(1).to(x.dtype)
    along_x, along_y, offset = coefficients.view(n, 3, 1, 1, 2).unbind(1)
    grid = torch.addcmul(torch.addcmul(offset, along_y, rows.to(x.dtype)), along_x, cols.to(x.dtype))
    return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)


def _smoothed(x: torch.Tensor) -> torch.Tensor:
    """The degenerate image of ``Sharpness``: ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` inside, ``x`` on the border.

    The smoothing is two running sums of three (rows, then columns) plus four times the centre: cheaper on
    small images than a grouped ``conv2d``.
    """
    h, w = x.shape[-2:]
    if h <= 2 or w <= 2:
        return x
    rows = x[..., :-2].add(x[..., 1:-1]).add_(x[..., 2:])
    inner = x[..., 1:-1, 1:-1]
    out = x.clone()
    out[..., 1:-1, 1:-1] = (
        rows[..., :-2, :].add(rows[..., 1:-1, :]).add_(rows[..., 2:, :]).add_(inner, alpha=4).div_(13)
    )
    return out


def _enhance(x: torch.Tensor, counts: list[int], m: torch.Tensor) -> torch.Tensor:
    """``Brightness``, ``Color``, ``Contrast`` and ``Sharpness`` (:data:`ENHANCE_OPS`) on one run of samples.

    The four are PIL's ``ImageEnhance`` (and torchvision's ``adjust_*``): each blends the image with a degenerate
    one, ``clamp(f x + (1 - f) d, 0, 1)`` with ``f = 1 + m``; ``d`` is black, the grey image, its mean grey, or
    the smoothed image. The first ``counts[0]`` samples of ``x`` take the first operation, the next
    ``counts[1]`` the second, and so on: the degenerate images are put together and blended in one step.
    """
    brightness, color, contrast, sharpness = counts
    parts = []
    if brightness:
        parts.append(torch.zeros_like(x[:brightness]))
    if color or contrast:
        greyed = x[brightness : brightness + color + contrast]
        grey = grayscale(greyed)
        if color:  # saturation needs RGB: other images stay as they are, as in torchvision
            parts.append(grey[:color].expand(-1, x.shape[1], -1, -1) if x.shape[1] == 3 else greyed[:color])
        if contrast:
            parts.append(grey[color:].mean(dim=(1, 2, 3), keepdim=True).expand_as(greyed[color:]))
    if sharpness:
        parts.append(_smoothed(x[len(x) - sharpness :]))
    degenerate = parts[0] if len(parts) == 1 else torch.cat(parts)
    return _blend(x, degenerate, _factor(1 + m, x))


def _posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    levels = _factor(torch.pow(2.0, torch.trunc(m.to(torch.float64))), x)
    # x >= 0, so the floor is never below 0; only x == 1 reaches `levels`.
    return torch.minimum(x.mul(levels).floor_(), levels - 1).div_(levels)


def _solarize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    # where(x >= threshold, 1 - x, x) in float arithmetic: a boolean image and torch.where cost several times more on
    # the CPU. above is 1 where x >= threshold (sign 0 or 1), else 0.
    above = (x - _factor(m, x)).sign_().add_(1).clamp_(max=1)
    return (1 - 2 * x).mul_(above).add_(x)


def _autocontrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.autocontrast(x)


@functools.lru_cache(maxsize=8)
def _levels(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 256 levels of an 8-bit image as floats, ``arange(256) / 255``: the table of an unchanged channel."""
    return (torch.arange(256, dtype=torch.float64) / 255).to(dtype=dtype, device=device)


def _equalize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The ``Equalize`` of torchvision: PIL's look-up table, on the image converted to 256 levels as torchvision does.

    Each channel's table is computed on ``[B, C, 256]`` counts (float32, exact below 2**22 pixels; float64
    above), holds the output floats, and is the identity for the channels that PIL leaves as they are
    (``step == 0``): the only image-sized steps are the conversion, the histogram and one ``gather``.
    """
    n, c, h, w = x.shape
    levels = x.mul(256 - 1e-3).long().flatten(2)  # torchvision's float -> uint8 conversion
    counts = x.new_zeros(n, c, 256, dtype=torch.float32 if h * w < 2**22 else torch.float64)
    counts = counts.scatter_add_(-1, levels, counts.new_ones(()).expand_as(levels))
    top = levels.amax(dim=-1, keepdim=True)  # the highest level present
    # Floor divisions as a division and a floor (exact on these integers, and far cheaper than rounding_mode="floor").
    step = counts.gather(-1, top).neg_().add_(h * w).div_(255).floor_()  # pixels below the highest level // 255
    # lut[k] = (pixels below level k + step // 2) // step, at most 255; lut[0] = 0 as step // 2 < step.
    below = counts.cumsum(-1).sub_(counts).add_(step.div(2).floor_())
    lut = below.div_(step.clamp(min=1)).floor_().clamp_(max=255).div_(255)
    lut = torch.where(step > 0, lut, _levels(lut.dtype, x.device)).to(x.dtype)
    return lut.gather(-1, levels).view(n, c, h, w)


_COLOR_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "Identity": lambda x, m: x.clone(),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Invert": lambda x, m: 1 - x,
}

if set(_COLOR_OPS) | set(GEOMETRIC_OPS) | set(ENHANCE_OPS) != set(OP_NAMES):
    known = sorted(_COLOR_OPS) + list(GEOMETRIC_OPS) + list(ENHANCE_OPS)
    raise RuntimeError(f"The operations {known} disagree with OpName {OP_NAMES}.")


def _family(names: tuple[str, ...]) -> range:
    """Where the operations ``names`` sit in ``OP_NAMES``: one after another, as apply_ops needs (it sorts by index)."""
    first = OP_NAMES.index(names[0])
    if OP_NAMES[first : first + len(names)] != names:
        raise RuntimeError(f"The operations {names} must follow one another in OpName {OP_NAMES}.")
    return range(first, first + len(names))


_IDENTITY, _GEOMETRIC, _ENHANCE = OP_NAMES.index("Identity"), _family(GEOMETRIC_OPS), _family(ENHANCE_OPS)


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
        kind = torch.full((x.shape[0],), GEOMETRIC_OPS.index(name), device=x.device)
        return _geometric(x, kind, magnitude, interpolation)
    if name in ENHANCE_OPS:
        return _enhance(x, [len(x) if name == other else 0 for other in ENHANCE_OPS], magnitude)
    if name not in _COLOR_OPS:
        raise ValueError(f"Expected name to be one of {OP_NAMES}, but got {name!r}.")
    return _COLOR_OPS[name](x, magnitude)


def _sorted_step_(x: torch.Tensor, ops: torch.Tensor, magnitude: torch.Tensor, interpolation: str) -> torch.Tensor:
    """One step of :func:`apply_ops` on samples already sorted by ``ops``, written into ``x`` (a copy of its own).

    Each run's result is copied into its rows (one small copy each, no concatenation of the batch); the
    ``Identity`` run is left as it is.
    """
    counts = torch.bincount(ops, minlength=len(OP_NAMES)).tolist()
    start = 0
    for k, count in enumerate(counts):
        if k in (_GEOMETRIC[0], _ENHANCE[0]):  # each family: one run
            family = _GEOMETRIC if k == _GEOMETRIC[0] else _ENHANCE
            count = sum(counts[i] for i in family)
        elif k in _GEOMETRIC or k in _ENHANCE:
            continue
        if count == 0:
            continue
        end = start + count
        run, m = x[start:end], magnitude[start:end]
        if k == _GEOMETRIC[0]:
            run.copy_(_geometric(run, ops[start:end] - k, m, interpolation))
        elif k == _ENHANCE[0]:
            run.copy_(_enhance(run, [counts[i] for i in _ENHANCE], m))
        elif k != _IDENTITY:
            run.copy_(_COLOR_OPS[OP_NAMES[k]](run, m))
        start = end
    return x


def apply_ops(
    x: torch.Tensor, ops: torch.Tensor, magnitude: torch.Tensor, interpolation: Interpolation = "nearest"
) -> torch.Tensor:
    """Apply to each sample the operation ``OP_NAMES[ops[i]]`` with magnitude ``magnitude[i]``; or several in turn.

    With ``ops`` and ``magnitude`` of shape ``[B, S]``, sample ``i`` gets ``OP_NAMES[ops[i, 0]]``, then
    ``OP_NAMES[ops[i, 1]]``, and so on. Each step sorts the samples by operation (one ``index_select``, the
    order carried from step to step); each run of samples that drew one colour operation is transformed by one
    batched call on its slice and written back in place, the run of geometric ones by one ``grid_sample``, the
    enhance family (``Brightness`` to ``Sharpness``) by one blend; at the end the samples are put back in order
    (one more ``index_select``).
    When every sample drew ``Identity`` at every step, ``x`` itself is returned.

    Shape:
        - x: ``[B, C, H, W]``; ops (int64) and magnitude: ``[B]`` or ``[B, S]``; output: ``[B, C, H, W]``.

    Example:
        >>> x = torch.rand(4, 3, 8, 8)
        >>> ops = torch.tensor([[OP_NAMES.index("Invert")] * 2, [0, 0], [0, 0], [0, 0]])
        >>> torch.allclose(apply_ops(x, ops, torch.zeros(4, 2)), x)  # inverted twice; the others Identity
        True
    """
    if ops.ndim == 1:
        ops, magnitude = ops.unsqueeze(1), magnitude.unsqueeze(1)
    perm: torch.Tensor | None = None  # out[j] is (a transform of) x[perm[j]]
    out = x
    for step in range(ops.shape[1]):
        step_ops, step_magnitude = ops[:, step], magnitude[:, step]
        if perm is not None:
            step_ops, step_magnitude = step_ops.index_select(0, perm), step_magnitude.index_select(0, perm)
        if bool((step_ops == _IDENTITY).all()):
            continue
        order = torch.argsort(step_ops, stable=True)
        step_ops, step_magnitude = step_ops.index_select(0, order), step_magnitude.index_select(0, order)
        out = _sorted_step_(out.index_select(0, order), step_ops, step_magnitude, interpolation)
        perm = order if perm is None else perm.index_select(0, order)
    if perm is None:
        return x
    inverse = torch.empty_like(perm).scatter_(0, perm, torch.arange(len(perm), device=perm.device))
    return out.index_select(0, inverse)
