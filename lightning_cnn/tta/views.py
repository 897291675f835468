"""The named views of test-time augmentation: each a deterministic function of a batch, with its inverse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, get_args

import torch

from lightning_cnn._utils.validation import check_choice, check_fraction, check_positive, check_range
from lightning_cnn.functional import views as kernels

__all__ = ["PRESETS", "VIEW_NAMES", "View", "ViewName", "make_views"]

ViewName = Literal[
    "identity",
    "hflip",
    "vflip",
    "rot90",
    "rot180",
    "rot270",
    "transpose",
    "anti_transpose",
    "shift_left",
    "shift_right",
    "shift_up",
    "shift_down",
    "zoom_in",
    "zoom_out",
    "five_crop",
    "ten_crop",
    "flips",
    "d4",
    "shifts",
]
VIEW_NAMES: tuple[str, ...] = get_args(ViewName)

# Names that stand for several views.
PRESETS: dict[str, tuple[str, ...]] = {
    "flips": ("identity", "hflip", "vflip"),
    "d4": ("identity", "rot90", "rot180", "rot270", "hflip", "vflip", "transpose", "anti_transpose"),
    "shifts": ("identity", "shift_left", "shift_right", "shift_up", "shift_down"),
}
if not set(PRESETS) <= set(VIEW_NAMES) or not all(set(v) <= set(VIEW_NAMES) for v in PRESETS.values()):
    raise RuntimeError("Every preset and every view it names must be a ViewName.")

# The exactly invertible views: (function, its inverse).
_EXACT: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "identity": (kernels.identity, kernels.identity),
    "hflip": (kernels.hflip, kernels.hflip),
    "vflip": (kernels.vflip, kernels.vflip),
    "rot90": (partial(kernels.rotate90, k=1), partial(kernels.rotate90, k=-1)),
    "rot180": (partial(kernels.rotate90, k=2), partial(kernels.rotate90, k=-2)),
    "rot270": (partial(kernels.rotate90, k=3), partial(kernels.rotate90, k=-3)),
    "transpose": (kernels.transpose, kernels.transpose),
    "anti_transpose": (kernels.anti_transpose, kernels.anti_transpose),
}
_SHIFTS = {"shift_left": (0, -1), "shift_right": (0, 1), "shift_up": (-1, 0), "shift_down": (1, 0)}


@dataclass(frozen=True)
class View:
    """One deterministic view of a batch ``[B, C, H, W]``, with its inverse where one exists.

    Flips, 90-degree rotations and transposes are exactly invertible; shifts, zooms and crops drop
    pixels, so their ``inverse_fn`` is ``None``.

    Example:
        >>> view = make_views(["rot90"])[0]
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> torch.equal(view.inverse(view(x)), x)
        True
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    inverse_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    @property
    def invertible(self) -> bool:
        """Whether :meth:`inverse` maps the view back exactly."""
        return self.inverse_fn is not None

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Map a view back to the original orientation (for dense outputs such as masks)."""
        if self.inverse_fn is None:
            raise NotImplementedError(f"The view {self.name!r} drops pixels, so it has no inverse.")
        return self.inverse_fn(x)


def _expand(name: str, shift: int, zoom: float, crop_fraction: float) -> list[View]:
    """The views one name stands for (not a preset)."""
    if name in _EXACT:
        return [View(name, *_EXACT[name])]
    if name in _SHIFTS:
        dy, dx = _SHIFTS[name]
        return [View(name, partial(kernels.shift, dy=dy * shift, dx=dx * shift))]
    if name in ("zoom_in", "zoom_out"):
        return [View(name, partial(getattr(kernels, name), fraction=1.0 - zoom))]
    views = [View(f"crop_{c}", partial(kernels.corner_crop, corner=c, fraction=crop_fraction)) for c in kernels.CORNERS]
    if name == "ten_crop":
        views += [
            View(f"hflip_crop_{c}", partial(kernels.hflip_corner_crop, corner=c, fraction=crop_fraction))
            for c in kernels.CORNERS
        ]
    return views


def make_views(names: Sequence[str], shift: int = 1, zoom: float = 0.1, crop_fraction: float = 0.875) -> list[View]:
    """Build the views named in ``names``; presets and ``five_crop``/``ten_crop`` expand to several.

    Names: ``identity``, ``hflip``, ``vflip``, ``rot90``, ``rot180``, ``rot270`` (counter-clockwise),
    ``transpose``, ``anti_transpose`` (the other diagonal), ``shift_left``/``right``/``up``/``down`` (by
    ``shift`` pixels, zero fill),
    ``zoom_in`` (centre crop of ``1 - zoom`` of the side, resized back), ``zoom_out`` (resized to
    ``1 - zoom`` of the side, zero padded), ``five_crop`` (four corner crops and the centre crop of
    ``crop_fraction`` of each side, each resized back to the input size), ``ten_crop`` (``five_crop``
    of the image and of its mirror). Presets: ``flips`` (identity, hflip, vflip), ``d4`` (the eight
    symmetries of the square), ``shifts`` (identity and four shifts). Every view keeps the input's
    shape except the rotations by 90 and 270 degrees and the transposes of non-square images.
    The kernels are the functions of :mod:`lightning_cnn.functional.views`.

    Args:
        names: view or preset names.
        shift: pixels of the ``shift_*`` views.
        zoom: zoom amount of ``zoom_in`` / ``zoom_out``, in ``(0, 1)``.
        crop_fraction: side fraction of the ``five_crop`` / ``ten_crop`` crops, in ``(0, 1]``.

    Raises:
        ValueError: for an unknown name or an out-of-range amount.

    Example:
        >>> [v.name for v in make_views(["identity", "five_crop"])]
        ['identity', 'crop_tl', 'crop_tr', 'crop_bl', 'crop_br', 'crop_cc']
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("Expected views to name at least one view, but got an empty sequence.")
    check_positive("shift", shift, integer=True)
    check_fraction("zoom", zoom)
    check_range("crop_fraction", crop_fraction, 0, 1, include_low=False)
    views: list[View] = []
    for name in names:
        check_choice("views", name, VIEW_NAMES)
        for part in PRESETS.get(name, (name,)):
            views.extend(_expand(part, int(shift), zoom, crop_fraction))
    return views
