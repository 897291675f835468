"""Training throughput through our modules (Lightning Trainer) against a hand-written PyTorch loop.

Same model, data, batch size, precision and initial weights; paired, interleaved repeats (the order of
the variants rotates each repeat); each timing skips a warm-up epoch and covers the following epochs up to
the end of training (epoch-end metric computation included). Prints images/s and, per repeat, the ratio to
the plain hand-written loop of the same repeat; the table shows the medians.

Variants (per model, per device):

- ``hand``: plain PyTorch loop, fp32, contiguous tensors, a ``DataLoader`` over a ``TensorDataset``.
- ``lightning``: ``Trainer.fit`` of our module with its defaults (metrics and logging on, a CSV logger),
  ``channels_last=False``, the same ``DataLoader``.
- ``lightning_lean``: as ``lightning`` with ``log_train_step=False`` (the lean preset of docs/performance.md).
- ``hand_fast`` / ``lightning_fast``: the fast path: channels-last weights and inputs, the
  :class:`~lightning_cnn.data.resident.DeviceResidentLoader`, and on a GPU ``bf16-mixed`` precision.

Run: ``.venv/bin/python benchmarks/throughput.py`` (``--help`` for sizes, repeats and threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from lightning_cnn import SimpleCNN, TransferClassifier
from lightning_cnn.data.resident import DeviceResidentLoader

warnings.filterwarnings("ignore")


def make_data(n: int, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits resized to ``size``, tiled to ``n`` images, normalized."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(digits.target, dtype=torch.int64)
    reps = -(-n // len(x))
    x, y = x.repeat(reps, 1, 1, 1)[:n], y.repeat(reps)[:n]
    x = ((x - x.mean()) / x.std()).repeat(1, channels, 1, 1).contiguous()
    return x, y


def make_model(kind: str, channels_last: bool, log_train_step: bool = True) -> pl.LightningModule:
    torch.manual_seed(0)
    if kind == "simple_cnn":
        return SimpleCNN(num_classes=10, in_channels=1, channels_last=channels_last, log_train_step=log_train_step)
    return TransferClassifier(
        num_classes=10,
        backbone=kind,
        finetune="full",
        in_channels=3,
        channels_last=channels_last,
        log_train_step=log_train_step,
    )


def loader(x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device, resident: bool) -> Any:
    if resident:
        return DeviceResidentLoader(x, y, batch, seed=0, device=device)
    return DataLoader(
        TensorDataset(x, y),
        batch_size=batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        pin_memory=device.type == "cuda",
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_hand(kind: str, x: Any, y: Any, batch: int, epochs: int, device: torch.device, fast: bool, bf16: bool) -> float:
    """The hand-written loop: images/s over the epochs after the first."""
    model = make_model(kind, channels_last=False).to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = loader(x, y, batch, device, resident=fast)
    model.train()
    start, seen = 0.0, 0
    for epoch in range(epochs):
        if epoch == 1:
            _sync(device)
            start = time.perf_counter()
        for xb, yb in data:
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            if fast:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch >= 1:
                seen += len(yb)
    _sync(device)
    return seen / (time.perf_counter() - start)


class _Timer(pl.Callback):
    def __init__(self) -> None:
        self.start = 0.0
        self.end = 0.0
        self.seen = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if trainer.current_epoch >= 1:
            self.seen += len(batch[1])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(pl_module.device)
        self.end = time.perf_counter()


def run_lightning(
    kind: str, x: Any, y: Any, batch: int, epochs: int, device: torch.device, fast: bool, bf16: bool, lean: bool
) -> float:
    """``Trainer.fit`` of our module: images/s over the epochs after the first."""
    model = make_model(kind, channels_last=fast, log_train_step=not lean)
    timer = _Timer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator=device.type,
            devices=1,
            max_epochs=epochs,
            precision="bf16-mixed" if bf16 else "32-true",
            logger=CSVLogger(tmp),
            callbacks=[timer],
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            log_every_n_steps=10,
        )
        data = loader(x, y, batch, device, resident=fast)
        trainer.fit(model, train_dataloaders=data)
    return timer.seen / (timer.end - timer.start)


def bench(kind: str, device: torch.device, args: argparse.Namespace) -> dict[str, list[float]]:
    size, channels = (args.size, 1) if kind == "simple_cnn" else (args.transfer_size, 3)
    batch = args.batch if kind == "simple_cnn" else args.transfer_batch
    x, y = make_data(batch * args.steps, size, channels)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    variants: dict[str, Callable[[], float]] = {
        "hand": lambda: run_hand(kind, x, y, batch, args.epochs, device, fast=False, bf16=False),
        "lightning": lambda: run_lightning(kind, x, y, batch, args.epochs, device, False, False, lean=False),
        "lightning_lean": lambda: run_lightning(kind, x, y, batch, args.epochs, device, False, False, lean=True),
        "hand_fast": lambda: run_hand(kind, x, y, batch, args.epochs, device, fast=True, bf16=bf16),
        "lightning_fast": lambda: run_lightning(kind, x, y, batch, args.epochs, device, True, bf16, lean=False),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(variants[name]())
        print(f"  {kind} {device.type} repeat {r}: " + ", ".join(f"{n} {rates[n][-1]:.0f}" for n in names), flush=True)
    return rates


def report(kind: str, device: torch.device, rates: dict[str, list[float]], batch: int) -> None:
    base = rates["hand"]
    print(f"\n{kind} on {device.type}, batch {batch}: median images/s and median of paired ratios to `hand`")
    print("| variant | img/s | / hand | / hand_fast |")
    print("|---|---:|---:|---:|")
    for name, values in rates.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        fast = statistics.median(v / b for v, b in zip(values, rates["hand_fast"], strict=True))
        print(f"| {name} | {statistics.median(values):.0f} | {ratio:.3f} | {fast:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["simple_cnn", "resnet18"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32, help="image side for SimpleCNN")
    parser.add_argument("--transfer-batch", type=int, default=64)
    parser.add_argument("--transfer-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="the first is warm-up")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, lightning {pl.__version__}, threads {args.threads}")
    print(f"load average before: {os.getloadavg()}")
    results = []
    for name in args.devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, not measured")
            continue
        device = torch.device(name)
        for kind in args.models:
            batch = args.batch if kind == "simple_cnn" else args.transfer_batch
            results.append((kind, device, bench(kind, device, args), batch))
    for kind, device, rates, batch in results:
        report(kind, device, rates, batch)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
