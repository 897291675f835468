"""Images per second of the batched augmentation policies against torchvision's per sample in loader workers.

For each policy (``randaugment``, ``trivialaugment``, ``autoaugment``): the worker path is a DataLoader with
2 workers applying torchvision's own ``RandAugment`` / ``TrivialAugmentWide`` / ``AutoAugment`` to each
sample (what ``augment_on="cpu"`` does); the batched path is one call of the policy per batch of 64 in the
main process, each sample its own operations and magnitudes (what ``augment_on="device"`` does: on the CPU by
default, on ``--device cuda`` where there is one, with the images already on the device and the clock read after
``torch.cuda.synchronize``). Both run on the same random RGB images, in the same process, and the ratio is printed.

:func:`policy_rows` returns the measurements, for a caller that prints them with other recipes.
Run: ``.venv/bin/python benchmarks/policies.py`` (``--quick`` for a smoke run; ``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn.augment import POLICY_NAMES, build_augmentation


class _Images(Dataset):
    def __init__(self, images: torch.Tensor, transform: Any) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), 0


def _workers(policy: str, images: torch.Tensor, batch_size: int, workers: int) -> float:
    aug = build_augmentation(policy)
    assert aug is not None
    loader = DataLoader(
        _Images(images, aug.to_torchvision(tuple(images.shape[-2:]))),
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    iterator = iter(loader)
    next(iterator)  # start the workers before timing
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batched(policy: str, images: torch.Tensor, batch_size: int) -> float:
    aug = build_augmentation(policy)
    assert aug is not None
    generator = torch.Generator(images.device).manual_seed(0)
    aug(images[:batch_size], generator=generator)  # warm-up
    _sync(images.device)
    start, seen = time.perf_counter(), 0
    for i in range(0, len(images), batch_size):
        seen += aug(images[i : i + batch_size], generator=generator).shape[0]
    _sync(images.device)
    return seen / (time.perf_counter() - start)


def policy_rows(
    size: int = 32,
    images: int = 4096,
    batch_size: int = 64,
    workers: int = 2,
    repeats: int = 3,
    policies: Sequence[str] = POLICY_NAMES,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Time each policy both ways; one row per policy with the best of ``repeats`` timings of each path.

    The per-sample path always runs on the CPU (loader workers); the batched one on ``device``.

    Returns:
        Rows with ``policy``, ``size``, ``workers_img_s``, ``batched_img_s`` and ``ratio`` (batched / workers).
    """
    torch.manual_seed(0)
    x = torch.rand(images, 3, size, size)
    on_device = x.to(device)
    rows = []
    for policy in policies:
        w = max(_workers(policy, x, batch_size, workers) for _ in range(repeats))
        b = max(_batched(policy, on_device, batch_size) for _ in range(repeats))
        rows.append({"policy": policy, "size": size, "workers_img_s": w, "batched_img_s": b, "ratio": b / w})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few images, for a smoke run")
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--images", type=int, default=4096, help="images per timing")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings of each path")
    parser.add_argument("--workers", type=int, default=2, help="loader workers of the per-sample path")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads, main process")
    parser.add_argument("--policies", nargs="+", default=list(POLICY_NAMES), choices=POLICY_NAMES)
    parser.add_argument("--device", default="cpu", help="where the batched path runs (cpu, cuda)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = 256 if args.quick else args.images
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.workers} loader workers,"
        f" {images} RGB images of {args.size}x{args.size}, batch 64, best of {args.repeats},"
        f" batched path on {args.device}"
    )
    print(f"{'policy':>15} {'size':>6} {'workers img/s':>14} {'batched img/s':>14} {'batched/workers':>16}")
    for row in policy_rows(args.size, images, 64, args.workers, args.repeats, args.policies, args.device):
        print(
            f"{row['policy']:>15} {row['size']:>4}px {row['workers_img_s']:>14.0f} {row['batched_img_s']:>14.0f}"
            f" {row['ratio']:>15.1f}x"
        )


if __name__ == "__main__":
    main()
