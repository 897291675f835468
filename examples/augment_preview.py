"""Still a cat? Write a grid of augmented versions of scikit-image's cat photo for each preset.

Run: ``.venv/bin/python examples/augment_preview.py [output_dir]``; prints the PNG paths. Row 1 of each
grid is the photo and 7 augmented versions; look at them before training with a preset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from skimage.data import chelsea

from lightning_cnn.callbacks import save_augmentation_preview
from lightning_cnn.data import PRESETS, build_augmentation


def main(out: Path) -> None:
    cat = torch.from_numpy(chelsea()).permute(2, 0, 1).float().div(255)  # [3, 300, 451]
    cat = F.interpolate(cat[None], size=(150, 225), mode="bilinear", antialias=True, align_corners=False)
    for preset in PRESETS:
        path = save_augmentation_preview(cat, build_augmentation(preset), out / f"cat_{preset}.png", versions=7)
        print(f"{preset}: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("augment_preview"))
