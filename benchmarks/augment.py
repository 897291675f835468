"""Images per second of the two augmentation paths, at 32×32 and 224×224, in one run.

CPU-worker path: a DataLoader with 2 workers applies torchvision v2 transforms per sample (what
``augment_on="cpu"`` does). Batched path: the same spec as one :class:`BatchAugmentation` call per batch
in the main process (what ``augment_on="device"`` does, here on the CPU). Prints the ratio and what
``augment_on="auto"`` picks for each size.

The batched path runs in the main process with torch's threads (all cores by default, as in training;
``--threads`` to change), the worker path with two processes of one thread each.
Run: ``.venv/bin/python benchmarks/augment.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn.augment import build_augmentation
from lightning_cnn.data.placement import resolve_augment_on

SPEC = "standard"  # flip + affine (rotation, translation, scale) + colour jitter


class _Images(Dataset):
    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), 0


def cpu_workers(images: torch.Tensor, batch_size: int, workers: int = 2) -> float:
    aug = build_augmentation(SPEC).to_torchvision(tuple(images.shape[-2:]))
    loader = DataLoader(_Images(images, aug), batch_size=batch_size, num_workers=workers, persistent_workers=True)
    next(iter(loader))  # start the workers before timing
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def batched(images: torch.Tensor, batch_size: int, device: torch.device | None = None) -> float:
    device = device or torch.device("cpu")
    aug = build_augmentation(SPEC).to(device)
    images = images.to(device)  # on a GPU the batches are already there, as after the loader's transfer
    aug(images[:batch_size])  # warm-up
    _sync(device)
    start, seen = time.perf_counter(), 0
    for i in range(0, len(images), batch_size):
        seen += aug(images[i : i + batch_size]).shape[0]
    _sync(device)
    return seen / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few images, for a smoke run")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads of the batched path (main process)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings of each path")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224], help="image sides to time")
    parser.add_argument("--device", default="cpu", help="where the batched path runs (cuda: the GPU row)")
    args = parser.parse_args()
    device = torch.device(args.device)
    # On a shared machine, more intra-op threads than free cores make torch far slower: pass --threads 1 there.
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, spec {SPEC!r}, 2 loader workers, batched on {device}")
    print(f"{'size':>8} {'cpu-workers img/s':>18} {'batched img/s':>14} {'batched/workers':>16} {'auto picks':>11}")
    for size in args.sizes:
        n = max(256, 4096 * 32 * 32 // (size * size))  # about the same number of pixels per size
        n = n // 8 if args.quick else n
        images = torch.rand(n, 3, size, size)
        w = max(cpu_workers(images, 64) for _ in range(args.repeats))
        b = max(batched(images, 64, device) for _ in range(args.repeats))
        pick = resolve_augment_on("auto", device.type, size, 2)
        print(f"{size:>4}x{size:<3} {w:>18.0f} {b:>14.0f} {b / w:>15.1f}x {pick:>11}")


if __name__ == "__main__":
    main()
