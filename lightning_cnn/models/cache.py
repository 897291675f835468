"""A cache of a frozen backbone's features, keyed by a hash of each image's content."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["FeatureCache"]


class FeatureCache:
    """The features of each image seen, keyed by a BLAKE2 digest of the image's bytes.

    The key is the image itself: the same image in any batch, epoch or loader finds its features, and any
    change to an image (a random augmentation) makes a new key, so caching helps only without augmentation.
    Within one training step (between :meth:`begin_step` and :meth:`end_step`), a batch looked up whole is
    remembered by the batch tensor itself, so an optimizer that evaluates its closure several times on the
    same batch (LBFGS) hashes it once; the memo ends with the step.

    Example:
        >>> cache = FeatureCache()
        >>> x, feats = torch.rand(2, 1, 4, 4), torch.rand(2, 3)
        >>> cache.lookup(x) is None
        True
        >>> cache.store(x, feats)
        >>> len(cache), torch.equal(cache.lookup(x.clone()), feats)
        (2, True)
    """

    def __init__(self) -> None:
        self._features: dict[bytes, torch.Tensor] = {}
        self._in_step = False
        self._memo: tuple[torch.Tensor, torch.Tensor] | None = None  # (batch, its features) of this step

    def __len__(self) -> int:
        return len(self._features)

    @staticmethod
    def keys(x: torch.Tensor) -> list[bytes]:
        """One 16-byte digest per image of ``x`` ``[B, ...]``."""
        rows = x.detach().flatten(1).cpu().contiguous().numpy()
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    def begin_step(self) -> None:
        """Start remembering whole-batch lookups (a training step begins)."""
        self._in_step, self._memo = True, None

    def end_step(self) -> None:
        """Forget the step's batch (a training step ends)."""
        self._in_step, self._memo = False, None

    def lookup(self, x: torch.Tensor) -> torch.Tensor | None:
        """The cached features ``[B, D]`` of every image of ``x``, on its device; ``None`` if any is missing."""
        if self._memo is not None and self._memo[0] is x:
            return self._memo[1]
        keys = self.keys(x)
        if not all(k in self._features for k in keys):
            return None
        feats = torch.stack([self._features[k] for k in keys]).to(x.device)
        if self._in_step:
            self._memo = (x, feats)  # holding the batch keeps its identity unique until the step ends
        return feats

    def store(self, x: torch.Tensor, feats: torch.Tensor) -> None:
        """Keep the features ``[B, D]`` of each image of ``x``."""
        for key, f in zip(self.keys(x), feats, strict=True):
            self._features[key] = f.detach()
