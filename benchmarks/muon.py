"""This project's Muon (conv filters to AdamW) against timm's Muon (conv filters flattened) on digits.

Usage::

    python benchmarks/muon.py [--epochs 10] [--seeds 0 1 2]

``"muon"`` is :class:`~lightning_cnn.optim.MuonWithAdamW`: Muon for the hidden fully connected weights, AdamW for
conv filters, biases, norms and the output layer. ``"timm:muon"`` is timm's ``Muon``: every conv filter flattened
to a matrix and orthogonalized too, AdamW fallback for 1-D tensors and the output layer. Both train the same
SimpleCNN on the same split for the same epochs and seeds, each with its default learning rate; the script prints
the test accuracy of every run, the mean of each, and the ratio of their training times (timm / ours).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings

import lightning.pytorch as pl
import torch

from lightning_cnn import DigitsDataModule, SimpleCNN
from lightning_cnn.optim import DEFAULT_LR

NAMES = ("muon", "timm:muon")


def run(name: str, epochs: int, seed: int) -> tuple[float, float]:
    """Test accuracy and training seconds of one run."""
    pl.seed_everything(seed, verbose=False)
    model = SimpleCNN(channels=(16, 32), hidden=(64,), optimizer=name)  # type: ignore[arg-type]
    dm = DigitsDataModule(batch_size=64)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=tmp,
        )
        start = time.perf_counter()
        trainer.fit(model, dm)
        seconds = time.perf_counter() - start
        acc = trainer.test(model, dm, verbose=False)[0]["test/acc"]
    return acc, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    accs: dict[str, list[float]] = {n: [] for n in NAMES}
    secs: dict[str, float] = dict.fromkeys(NAMES, 0.0)
    for seed in args.seeds:
        for name in NAMES:
            acc, seconds = run(name, args.epochs, seed)
            accs[name].append(acc)
            secs[name] += seconds
            print(f"seed {seed} {name:10s} lr {DEFAULT_LR[name]:g}: test accuracy {acc:.4f} ({seconds:.1f} s)")
    print(f"SimpleCNN(channels=(16, 32), hidden=(64,)) on digits, {args.epochs} epochs, seeds {args.seeds}")
    print(f"torch {torch.__version__}, CPU, 1 thread ({platform.processor() or platform.machine()})")
    for name in NAMES:
        mean = sum(accs[name]) / len(accs[name])
        print(f"{name:10s} mean test accuracy {mean:.4f} over {len(accs[name])} seeds, {secs[name]:.1f} s")
    diff = sum(accs["timm:muon"]) / len(args.seeds) - sum(accs["muon"]) / len(args.seeds)
    print(f"timm - ours mean accuracy {diff:+.4f}; time ratio timm/ours {secs['timm:muon'] / secs['muon']:.2f}x")


if __name__ == "__main__":
    main()
