"""Cost of a frozen-backbone linear probe, measured against its baselines in the same run.

1. One linear-probe training step (frozen backbone without autograd, head forward and backward, optimizer
   step) against one backbone inference on the same batch: paired, interleaved repeats; median ratio.
2. A training epoch with cached features (the backbone ran once, in an earlier epoch) against an epoch
   without the cache, both through a Lightning Trainer on the same data.

Usage: python benchmarks/transfer.py [--backbone resnet18] [--size 224] [--batch 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lightning_cnn import DigitsDataModule, TransferClassifier


def step_vs_inference(backbone: str, size: int, batch: int, repeats: int) -> tuple[float, float, float]:
    torch.manual_seed(0)
    model = TransferClassifier(backbone=backbone, finetune="linear", lr=1e-3).train()
    optimizer = model.configure_optimizers()
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    def inference() -> None:
        with torch.no_grad():
            model.features(x)

    step(), inference()  # warm-up
    steps, infers = [], []
    for _ in range(repeats):
        for fn, out in ((inference, infers), (step, steps)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    ratios = [s / i for s, i in zip(steps, infers, strict=True)]
    return statistics.median(steps), statistics.median(infers), statistics.median(ratios)


class _EpochTimer(Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._t0)


def epoch_seconds(backbone: str, size: int, cache: bool, epochs: int) -> list[float]:
    pl.seed_everything(0, verbose=False)
    timer = _EpochTimer()
    model = TransferClassifier(backbone=backbone, cache_features=cache, lr=1e-2)
    with tempfile.TemporaryDirectory() as tmp:  # the DataModule's splits.json goes there
        trainer = pl.Trainer(
            max_epochs=epochs,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
            default_root_dir=tmp,
        )
        trainer.fit(model, DigitsDataModule(image_size=size, rgb=True, batch_size=64))
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=224, help="image side for the step benchmark")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epoch-size", type=int, default=64, help="image side for the epoch benchmark")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    step, infer, ratio = step_vs_inference(args.backbone, args.size, args.batch, args.repeats)
    print(
        f"{args.backbone} {args.size}px batch {args.batch}: linear-probe step {step * 1e3:.0f} ms, backbone"
        f" inference {infer * 1e3:.0f} ms, ratio {ratio:.3f} (median of {args.repeats} paired repeats; bar <= 1.1)"
    )

    plain = epoch_seconds(args.backbone, args.epoch_size, cache=False, epochs=2)
    cached = epoch_seconds(args.backbone, args.epoch_size, cache=True, epochs=2)
    print(
        f"digits at {args.epoch_size}px, 1,259 training images: epoch without cache {min(plain):.2f} s, with the"
        f" cache filled (epoch 2) {cached[1]:.2f} s (epoch 1, filling it: {cached[0]:.2f} s):"
        f" {min(plain) / cached[1]:.1f}x faster (bar >= 10x)"
    )


if __name__ == "__main__":
    main()
