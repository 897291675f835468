"""Batch unpacking: the one place that knows the shapes a batch may come in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["class_indices", "split_batch"]


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images, labels or None)`` from a ``(x, y)`` tuple or list, an ``{"image", "label"}`` mapping, or a tensor.

    Raises:
        TypeError: for any other batch, saying how to pass a converter.

    Example:
        >>> import torch
        >>> x, y = split_batch((torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])))
        >>> x.shape, y.tolist()
        (torch.Size([2, 1, 4, 4]), [0, 1])
        >>> split_batch({"image": torch.zeros(1, 3, 2, 2)})[1] is None
        True
    """
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    if isinstance(batch, Mapping):
        return batch["image"], batch.get("label")
    if isinstance(batch, torch.Tensor):
        return batch, None
    raise TypeError(
        f"Cannot find the images in a batch of type {type(batch).__name__}: pass batch_to_input=... or"
        " override batch_to_input() to return (images, labels or None)."
    )


def class_indices(y: torch.Tensor) -> torch.Tensor:
    """Hard class indices ``[B]`` from int labels ``[B]`` or soft / one-hot targets ``[B, K]`` (their argmax).

    Example:
        >>> import torch
        >>> class_indices(torch.tensor([[0.2, 0.8], [0.9, 0.1]])).tolist()
        [1, 0]
    """
    return y.argmax(-1) if y.is_floating_point() else y.long()
