"""The map-style datasets the sources hand to their loaders, and the collate function that batches them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from lightning_cnn.data.readers import load_image

__all__ = ["ArrayDataset", "FileDataset", "collate_images", "sample_label"]


def sample_label(labels: np.ndarray, index: int) -> int | torch.Tensor:
    """Sample ``index``'s label: its class index, or its float 0/1 row ``[L]`` of a multi-label matrix."""
    if labels.ndim == 2:
        return torch.from_numpy(labels[index].astype(np.float32))
    return int(labels[index])


def collate_images(batch: list[Any]) -> Any:
    """Stack ``(image, label)`` samples into a batch; images of different sizes fail with a clear message.

    Example:
        >>> x, y = collate_images([(torch.zeros(1, 8, 8), 0), (torch.ones(1, 8, 8), 1)])
        >>> x.shape, y.tolist()
        (torch.Size([2, 1, 8, 8]), [0, 1])
    """
    first = batch[0][0] if isinstance(batch[0], (tuple, list)) else None
    if isinstance(first, torch.Tensor):
        for sample in batch[1:]:
            if sample[0].shape != first.shape:
                raise ValueError(
                    f"Images of different sizes in one batch: {tuple(first.shape)} and {tuple(sample[0].shape)}"
                    " ([C, H, W]). Set image_size (e.g. image_size=224) to resize every image to one size."
                )
    return default_collate(batch)


class FileDataset(Dataset):
    """``(image, label)`` per file, or ``(image,)`` without labels; images decoded with :func:`load_image`.

    Args:
        paths: the image files.
        labels: class index of each file (or a 0/1 label matrix ``[N, L]``), or ``None``.
        options: keyword arguments of :func:`~lightning_cnn.data.readers.load_image`.
    """

    def __init__(self, paths: list[str], labels: np.ndarray | None, options: dict[str, Any]) -> None:
        self.paths, self.labels, self.options = paths, labels, options

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor] | tuple[torch.Tensor]:
        image = load_image(self.paths[index], **self.options)
        return (image,) if self.labels is None else (image, sample_label(self.labels, index))


class ArrayDataset(Dataset):
    """``(image, label)`` from an image tensor ``[N, C, H, W]``: uint8 scaled to ``[0, 1]``, floats as they are.

    Args:
        images: the images.
        labels: class index of each image (or a 0/1 label matrix ``[N, L]``).
    """

    def __init__(self, images: torch.Tensor, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        x = self.images[index]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return x, sample_label(self.labels, index)
