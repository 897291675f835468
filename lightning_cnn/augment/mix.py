"""MixUp and CutMix of a labelled batch, with a random draw for every sample, producing soft targets.

Each sample ``i`` of a batch is mixed with its neighbour ``i - 1`` (the batch rolled by one, so no sample is
paired with itself; the training order is shuffled, so neighbours are random pairs). Every sample draws on its
own: whether it is mixed at all (``prob``), MixUp or CutMix (``switch_prob`` when both are on), its weight
``lam ~ Beta(alpha, alpha)`` and, for CutMix, its box. MixUp blends the two images, ``lam * x_i + (1 - lam) *
x_{i-1}``; CutMix pastes a box of the neighbour of area about ``(1 - lam)`` of the image into it, and ``lam`` is
then corrected to the share of the image it kept (the box is clipped at the borders). The target is
``lam * y_i + (1 - lam) * y_{i-1}``, a float ``[B, K]`` (label smoothing stays the loss's job). A sample that is
not mixed keeps its image bit for bit and gets its one-hot target.

The draws come from a NumPy :class:`numpy.random.Generator` the caller hands in (a DataModule seeds one per
batch from its seed, its rank and the number of batches mixed, so a resumed run draws the same). Plain torch and
NumPy, no Lightning.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lightning_cnn._utils.validation import check_positive, check_range
from lightning_cnn.augment.base import check_images

__all__ = ["BatchMix"]


class BatchMix(nn.Module):
    """MixUp and CutMix with per-sample draws: images ``[B, C, H, W]`` and labels in, mixed images and soft targets out.

    Args:
        mixup_alpha: ``alpha`` of MixUp's ``Beta(alpha, alpha)``; ``0`` turns MixUp off.
        cutmix_alpha: ``alpha`` of CutMix's ``Beta(alpha, alpha)``; ``0`` turns CutMix off.
        prob: probability that a sample is mixed (drawn per sample).
        switch_prob: probability that a mixed sample takes CutMix rather than MixUp, when both are on.

    Raises:
        ValueError: for a negative or non-finite alpha, or a probability outside ``[0, 1]``.
        TypeError: for a value that is no number.

    Shape:
        - images: ``[B, C, H, W]``, float (never modified in place).
        - labels: int class indices ``[B]``, or float targets ``[B, K]`` (soft or multi-label), mixed alike.
        - output: images ``[B, C, H, W]`` and float targets ``[B, K]``.

    Example:
        >>> mix = BatchMix(mixup_alpha=0.2, cutmix_alpha=1.0)
        >>> x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
        >>> mixed, target = mix(x, y, 4, np.random.default_rng(0))
        >>> mixed.shape, target.shape, torch.allclose(target.sum(1), torch.ones(4))
        (torch.Size([4, 1, 8, 8]), torch.Size([4, 4]), True)
        >>> again, same = mix(x, y, 4, np.random.default_rng(0))
        >>> torch.equal(again, mixed) and torch.equal(same, target)
        True
    """

    def __init__(
        self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, prob: float = 1.0, switch_prob: float = 0.5
    ) -> None:
        super().__init__()
        check_positive("mixup_alpha", mixup_alpha, allow_zero=True, finite=True)
        check_positive("cutmix_alpha", cutmix_alpha, allow_zero=True, finite=True)
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob = check_range("mix_prob", prob, 0, 1)
        self.switch_prob = check_range("mix_switch_prob", switch_prob, 0, 1)

    @property
    def enabled(self) -> bool:
        """Whether a batch can change at all (an alpha above 0 and ``prob > 0``)."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0

    def make_params(self, n: int, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
        """Draw every sample's mixing: a CPU float tensor ``[n, 6]`` of ``(lam, cutmix, top, bottom, left, right)``.

        ``lam`` is the weight of the sample's own image and label (``1``: not mixed), corrected to the kept area for
        CutMix; the box rows ``[top, bottom)`` and columns ``[left, right)`` come from the neighbour (empty for
        MixUp). The same number of values is drawn whatever the options, in a fixed order.
        """
        mixed = rng.random(n) < self.prob
        switch = rng.random(n) < self.switch_prob
        lam_mix = rng.beta(self.mixup_alpha, self.mixup_alpha, n) if self.mixup_alpha > 0 else np.ones(n)
        lam_cut = rng.beta(self.cutmix_alpha, self.cutmix_alpha, n) if self.cutmix_alpha > 0 else np.ones(n)
        cy, cx = rng.random(n) * height, rng.random(n) * width
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            cut = switch
        else:
            cut = np.full(n, self.cutmix_alpha > 0)
        cut &= mixed
        params = np.zeros((n, 6), dtype=np.float32)
        params[:, 0] = np.where(mixed, lam_mix, 1.0)
        if cut.any():  # the boxes (MixUp alone has none)
            side = np.sqrt(1.0 - lam_cut)  # a box of area (1 - lam) of the image, of the image's proportions
            box_h, box_w = np.floor(height * side), np.floor(width * side)
            top, left = np.floor(cy - box_h / 2), np.floor(cx - box_w / 2)
            box = np.clip(np.stack([top, top + box_h, left, left + box_w], 1), 0, [height, height, width, width])
            box[~cut] = 0.0
            kept = 1.0 - (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2]) / (height * width)
            params[:, 0] = np.where(cut, kept, params[:, 0])
            params[:, 1], params[:, 2:] = cut, box
        return torch.from_numpy(params)

    def transform(
        self, x: torch.Tensor, target: torch.Tensor, params: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix images ``[B, C, H, W]`` and float targets ``[B, K]`` with drawn ``params`` (new tensors).

        Each sample's weight of its own image is ``lam`` everywhere (MixUp, or not mixed: ``lam = 1``), or for CutMix
        0 inside its box and 1 outside; the boxes are built only when some sample of the batch takes CutMix (known
        from ``params`` on the CPU, before they go to the device).
        """
        any_cut = bool(params[:, 1].any()) if params.device.type == "cpu" else True
        params = params.to(x.device, non_blocking=True)
        lam = params[:, 0]
        own = lam.view(-1, 1, 1)  # [B, 1, 1]: the own image's weight, the same at every pixel
        if any_cut:
            top, bottom, left, right = (params[:, i, None] for i in range(2, 6))  # [B, 1] each
            rows = torch.arange(x.shape[-2], device=x.device, dtype=params.dtype)
            cols = torch.arange(x.shape[-1], device=x.device, dtype=params.dtype)
            in_rows = ((rows >= top) & (rows < bottom)).to(params.dtype)  # [B, H]
            in_cols = ((cols >= left) & (cols < right)).to(params.dtype)  # [B, W]
            outside = 1 - in_rows[:, :, None] * in_cols[:, None, :]  # [B, H, W]: 1 outside the box, 0 inside
            # lerp(start, end, weight) is start at weight 0 and end at weight 1 exactly: CutMix samples get 0 or 1.
            own = torch.lerp(own, outside, params[:, 1].view(-1, 1, 1))
        # lerp(end=x, weight=1) is x exactly: a sample that is not mixed, and CutMix outside its box, stay bit-exact.
        images = torch.lerp(x.roll(1, 0), x, own[:, None].to(x.dtype))
        targets = torch.lerp(target.roll(1, 0), target, lam[:, None].to(target.dtype))
        return images, targets

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        num_classes: int,
        rng: np.random.Generator | None = None,
        params: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix images ``[B, C, H, W]`` and labels (``[B]`` indices or ``[B, K]`` floats): images, targets ``[B, K]``.

        The draws come from ``rng``, or are given as ``params`` (rows of :meth:`make_params`, one per sample).
        """
        check_images(x)
        if params is None:
            if rng is None:
                raise ValueError("Expected a NumPy generator (rng) or drawn params to mix a batch, but got neither.")
            params = self.make_params(x.shape[0], x.shape[-2], x.shape[-1], rng)
        target = y.float() if y.is_floating_point() else F.one_hot(y.long(), num_classes).float()
        return self.transform(x, target, params)

    def extra_repr(self) -> str:
        return (
            f"mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.prob},"
            f" switch_prob={self.switch_prob}"
        )
