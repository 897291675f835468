"""Images that spell their own index, to see which samples a loader gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def indexed_npz(path: Path, count: int = 120, classes: int = 4) -> str:
    """uint8 images whose first two pixels spell their index (``256 * x[0, 0] + x[0, 1]``), labels ``i % classes``."""
    x = np.zeros((count, 1, 4, 4), dtype=np.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = np.arange(count) // 256, np.arange(count) % 256
    np.savez(path, x=x, y=np.arange(count) % classes)
    return str(path)


def sample_ids(x: torch.Tensor) -> list[int]:
    """The indices :func:`indexed_npz` spelled into raw (unnormalized) images ``[B, 1, 4, 4]``."""
    pixels = torch.round(x[:, 0, 0, :2].float() * 255).long()
    return (pixels[:, 0] * 256 + pixels[:, 1]).tolist()
