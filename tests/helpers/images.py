"""Checks on written figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def assert_real_png(path: Path, min_size: tuple[int, int] = (300, 300)) -> None:
    """The file is a PNG at least ``min_size`` (width, height) pixels, with something drawn on it."""
    assert path.is_file(), path
    image = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert image.shape[1] >= min_size[0] and image.shape[0] >= min_size[1], image.shape
    assert image.std() > 10, f"{path.name} looks blank"
    assert (image < 128).mean() > 0.005, f"{path.name} has almost nothing drawn"
