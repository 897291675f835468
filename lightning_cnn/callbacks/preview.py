"""Preview of augmentation ("still a cat?"): a PNG grid of augmented versions of a few images, and a callback."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from typing_extensions import override

from lightning_cnn._utils.protocols import HasAugmentation, HasPreviewImages
from lightning_cnn.callbacks.figures import send_figure

__all__ = ["AugmentationPreview", "augmentation_grid", "save_augmentation_preview"]


def augmentation_grid(
    images: torch.Tensor, augmentation: nn.Module | None, versions: int = 8, seed: int = 0
) -> torch.Tensor:
    """A grid image ``[C, H', W']``: one row per image, the original first, then ``versions`` augmented copies.

    Args:
        images: a few images ``[N, C, H, W]`` in ``[0, 1]``.
        augmentation: the augmentation to show, a module called as ``augmentation(images, generator=...)``
            (``None``: the originals repeated).
        versions: augmented copies of each image.
        seed: seed of the augmentation's random draws.

    Example:
        >>> class Flip(nn.Module):
        ...     def forward(self, images, generator=None):
        ...         return images.flip(-1)
        >>> augmentation_grid(torch.rand(2, 3, 16, 16), Flip(), versions=3).shape
        torch.Size([3, 38, 74])
    """
    from torchvision.utils import make_grid

    if images.ndim != 4:
        raise ValueError(f"Expected images [N, C, H, W], but got shape {tuple(images.shape)}.")
    n = images.shape[0]
    repeated = images.float().repeat_interleave(versions, dim=0)
    if augmentation is not None:
        generator = torch.Generator(device=images.device).manual_seed(seed)
        repeated = augmentation(repeated, generator=generator)
    rows = torch.cat([images.float().unsqueeze(1), repeated.view(n, versions, *images.shape[1:])], dim=1)
    return make_grid(rows.flatten(0, 1), nrow=versions + 1, padding=2, pad_value=1.0).clamp(0, 1)


def save_augmentation_preview(
    images: torch.Tensor,
    augmentation: nn.Module | None,
    path: str | Path,
    versions: int = 8,
    seed: int = 0,
    scale: int = 1,
) -> Path:
    """Write :func:`augmentation_grid` as a PNG and return its path.

    Args:
        images: a few images ``[N, C, H, W]`` in ``[0, 1]``.
        augmentation: the augmentation to show.
        path: the PNG file to write.
        versions: augmented copies of each image.
        seed: seed of the augmentation's random draws.
        scale: enlarge the grid by this integer factor (nearest neighbour), for tiny images.
    """
    from PIL import Image

    grid = augmentation_grid(images, augmentation, versions, seed)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    array = (grid * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path


class AugmentationPreview(pl.Callback):
    """At fit start, write a PNG grid of augmented training images and send it to the loggers that take images.

    Takes the DataModule's first ``images`` training images (``datamodule.preview_images``, see
    :class:`~lightning_cnn._utils.protocols.HasPreviewImages`) and its ``augmentation``
    (:class:`~lightning_cnn._utils.protocols.HasAugmentation`), writes ``augment_preview.png`` into the
    trainer's log folder (rank 0 only) and sends it as image ``augment/preview`` to TensorBoard, MLflow and W&B
    when the trainer logs there (:func:`~lightning_cnn.callbacks.figures.send_figure`).

    Args:
        images: training images to show.
        versions: augmented copies of each.
        seed: seed of the augmentation's random draws.
        filename: name of the PNG in the log folder.
        scale: enlarge the grid by this integer factor (for tiny images such as 8×8 digits).
    """

    def __init__(
        self, images: int = 4, versions: int = 8, seed: int = 0, filename: str = "augment_preview.png", scale: int = 1
    ) -> None:
        super().__init__()
        if images < 1 or versions < 1 or scale < 1:
            raise ValueError(f"Expected images, versions and scale to be >= 1, but got {images}, {versions}, {scale}.")
        self.images, self.versions, self.seed, self.filename, self.scale = images, versions, seed, filename, scale
        self.path: Path | None = None

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = trainer.datamodule  # type: ignore[attr-defined]
        if not isinstance(dm, HasPreviewImages):
            raise ValueError(
                "AugmentationPreview needs a DataModule with preview_images() and augmentation"
                f" (a ClassifierDataModule), but the trainer has {type(dm).__name__ if dm is not None else 'none'}."
            )
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        if not trainer.is_global_zero:
            return
        images = dm.preview_images(self.images)
        augmentation = dm.augmentation if isinstance(dm, HasAugmentation) else None
        self.path = save_augmentation_preview(
            images, augmentation, log_dir / self.filename, self.versions, self.seed, self.scale
        )
        grid = augmentation_grid(images, augmentation, self.versions, self.seed)
        pixels = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).expand(-1, -1, 3).cpu().numpy()
        send_figure(trainer, "augment/preview", self.path, pixels)  # TensorBoard, MLflow, W&B
