"""Where training augmentation runs: batched on the device, or per sample in the loader workers."""

from __future__ import annotations

from typing import Any, Literal, get_args

from torch.utils.data import Dataset

__all__ = ["AUGMENT_ON_NAMES", "AUTO_CPU_MAX_SIDE", "AugmentOn", "AugmentedDataset", "resolve_augment_on"]

AugmentOn = Literal["cpu", "device", "auto"]
AUGMENT_ON_NAMES: tuple[str, ...] = get_args(AugmentOn)

# Largest image side for which "auto" runs the batched path on a CPU with loader workers; above it the
# per-sample torchvision path in workers wins there. Measured by benchmarks/augment.py (see its README).
AUTO_CPU_MAX_SIDE = 128


class AugmentedDataset(Dataset):
    """A dataset whose images pass through a per-sample transform (runs in the loader workers).

    Args:
        dataset: a dataset of ``(image, label)``.
        transform: applied to each image.
    """

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        x, y = self.dataset[index]
        return self.transform(x), y


def resolve_augment_on(
    augment_on: AugmentOn, accelerator: str, image_size: int | None, num_workers: int
) -> Literal["cpu", "device"]:
    """Pick where augmentation runs: ``"device"`` (batched) or ``"cpu"`` (per sample in loader workers).

    ``"auto"`` picks the path measured faster by ``benchmarks/augment.py``: the batched device path on
    any accelerator, on the CPU without loader workers, and on the CPU for images up to
    :data:`AUTO_CPU_MAX_SIDE` pixels a side; the per-sample path in workers for larger images on the CPU.

    Args:
        augment_on: ``"cpu"``, ``"device"`` or ``"auto"``.
        accelerator: ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"mps"``, ...
        image_size: the larger image side, if known.
        num_workers: loader worker processes.

    Example:
        >>> resolve_augment_on("auto", "cpu", 32, 2), resolve_augment_on("auto", "cpu", 224, 2)
        ('device', 'cpu')
        >>> resolve_augment_on("auto", "cuda", 224, 2)
        'device'
    """
    if augment_on != "auto":
        return augment_on
    if accelerator != "cpu" or num_workers == 0 or image_size is None:
        return "device"
    return "device" if image_size <= AUTO_CPU_MAX_SIDE else "cpu"
