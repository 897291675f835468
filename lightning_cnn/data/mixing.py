"""MixUp and CutMix of training batches on the device: a DataModule's options, its per-batch draws and their state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lightning_cnn.augment.mix import BatchMix
from lightning_cnn.data.source import DataSource

__all__ = ["DRAWN_TOGETHER", "BatchMixing"]

#: Batches whose draws come from one generator, in one call: ``make_params`` costs about as much for 32 batches as for
#: one (a few dozen small NumPy operations), so the draws of a block of batches are made when its first batch comes.
DRAWN_TOGETHER = 32


class BatchMixing(DataSource):
    """The mixing part of a :class:`~lightning_cnn.data.base.ClassifierDataModule` (a mixin).

    Training batches only (never validation, test or predict), after the transfer to the device and the batched
    augmentation, before normalization: :class:`~lightning_cnn.augment.mix.BatchMix` mixes the images and turns the
    labels into soft targets ``[B, K]``. The draws of batch ``n`` come from a NumPy generator seeded with ``(seed,
    rank, n // 32)``, which draws for :data:`DRAWN_TOGETHER` (32) batches of this batch's size at once, and batch
    ``n`` takes the ``n % 32``-th of them: the seed is the one of the training order, the rank the trainer's (each
    process draws its own), and ``n`` counts the batches this DataModule mixed. The count is in :meth:`mixing_state`
    (so in every checkpoint): a run resumed from any checkpoint, also in the middle of an epoch and on several
    processes, draws what the uninterrupted run drew.

    What the module then gets: float targets ``[B, K]`` in place of class indices, so its loss must take
    probability targets (every loss of :mod:`lightning_cnn.losses` does), and hard labels for accuracy are their
    argmax (:func:`~lightning_cnn._utils.batch.class_indices`): the class with the larger share of the image (the
    sample's own when it kept at least half), the sample's own label when it was not mixed.
    """

    mixing: BatchMix
    _mixed_batches: int

    def _order_seed(self) -> int:
        raise NotImplementedError  # the DataModule's seed of the training order

    def _init_mixing(self, mixup_alpha: float, cutmix_alpha: float, mix_prob: float, mix_switch_prob: float) -> None:
        self.mixing = BatchMix(mixup_alpha, cutmix_alpha, mix_prob, mix_switch_prob)
        self._mixed_batches = 0
        self._drawn: tuple[tuple[Any, ...], torch.Tensor] | None = None  # the draws of the current block of batches

    def mix_batch(self, x: torch.Tensor, rest: list[Any], rank: int) -> tuple[torch.Tensor, list[Any]]:
        """Mix a training batch ``(x, y, ...)``: new images and soft targets ``[B, K]``, the rest as it was.

        Raises:
            ValueError: for a batch without labels.
        """
        if not rest or not isinstance(rest[0], torch.Tensor):
            raise ValueError(
                "Expected labelled training batches (x, y) to mix (mixup_alpha or cutmix_alpha > 0), but got a"
                " batch without a label tensor."
            )
        block, slot = divmod(self._mixed_batches, DRAWN_TOGETHER)
        mix, (n, h, w) = self.mixing, (x.shape[0], *x.shape[-2:])
        key = (self._order_seed(), rank, block, n, h, w, mix.mixup_alpha, mix.cutmix_alpha, mix.prob, mix.switch_prob)
        if self._drawn is None or self._drawn[0] != key:  # one generator and one draw for DRAWN_TOGETHER batches
            rng = np.random.default_rng([self._order_seed(), rank, block])
            self._drawn = (key, mix.make_params(DRAWN_TOGETHER * n, h, w, rng).view(DRAWN_TOGETHER, n, -1))
        self._mixed_batches += 1
        images, targets = mix(x, rest[0], self.num_classes, params=self._drawn[1][slot])
        return images, [targets, *rest[1:]]

    def mixing_state(self) -> dict[str, Any]:
        """What the next draws depend on, for a checkpoint (primitives only)."""
        return {"mixed_batches": self._mixed_batches}

    def load_mixing_state(self, state_dict: dict[str, Any]) -> None:
        """Continue the draws of a checkpoint's run (a state without them: from the start)."""
        self._mixed_batches = int(state_dict.get("mixed_batches", 0))
