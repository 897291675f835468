"""Train SimpleCNN on digits with each torch.optim algorithm for the same budget; print a table, plot the curves.

Usage::

    python benchmarks/optimizers.py [--epochs 3] [--out benchmarks/optimizers.png]

Every optimizer gets the same model, data split, seed, number of epochs and batches, with its default
learning rate (``lightning_cnn.optim.DEFAULT_LR``). ``sparse_adam`` is listed with the error it raises.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import matplotlib
import torch

from lightning_cnn import DigitsDataModule, SimpleCNN
from lightning_cnn.optim import DEFAULT_LR, OPTIMIZERS

matplotlib.use("Agg")
import matplotlib.pyplot as plt


class LossCurve(pl.Callback):
    """Record the training loss of every optimizer step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        self.losses.append(float(outputs["loss"]))


def run(name: str, epochs: int, seed: int) -> dict[str, Any]:
    pl.seed_everything(seed, verbose=False)
    model = SimpleCNN(channels=(16, 32), hidden=(64,), optimizer=name)  # type: ignore[arg-type]
    dm = DigitsDataModule(batch_size=64)
    curve = LossCurve()
    with tempfile.TemporaryDirectory() as tmp:  # the DataModule's splits.json goes there
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            num_sanity_val_steps=0,
            callbacks=[curve],
            default_root_dir=tmp,
        )
        start = time.perf_counter()
        trainer.fit(model, dm)
        seconds = time.perf_counter() - start
    val = trainer.validate(model, dm, verbose=False)[0]
    last = curve.losses[-10:]
    return {
        "name": name,
        "lr": DEFAULT_LR[name],
        "train_loss": sum(last) / len(last),
        "val_acc": val["val/acc"],
        "seconds": seconds,
        "curve": curve.losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("optimizers.png"))
    parser.add_argument("--only", nargs="*", default=None, help="optimizer names to run (default: all)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)

    names = args.only or list(OPTIMIZERS)
    rows: list[dict[str, Any]] = []
    for name in names:
        if name == "sparse_adam":
            model = SimpleCNN(channels=(16, 32), hidden=(64,), optimizer="sparse_adam")
            try:
                model.configure_optimizers()
            except ValueError as err:
                rows.append({"name": name, "error": str(err).split(";")[0]})
            continue
        rows.append(run(name, args.epochs, args.seed))

    cpu = f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    print(f"SimpleCNN(channels=(16, 32), hidden=(64,)) on digits, {args.epochs} epochs of batch 64, seed {args.seed}")
    print(f"torch {torch.__version__}, CPU only ({cpu})")
    print()
    print("| optimizer | lr | final train loss | val accuracy | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | - | refused: {r['error']} | - | - |")
        else:
            print(f"| {r['name']} | {r['lr']:g} | {r['train_loss']:.4f} | {r['val_acc']:.4f} | {r['seconds']:.1f} |")

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=80)
    curves = [r for r in rows if "curve" in r]
    for i, r in enumerate(curves):
        style = ("-", "--", ":")[i % 3]
        ax.plot(
            r["curve"], label=r["name"], linewidth=1.2, linestyle=style, color=plt.cm.tab20(i / max(len(curves), 1))
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_yscale("log")
    ax.set_title(f"SimpleCNN on digits, {args.epochs} epochs, default lr of each optimizer")
    ax.legend(ncol=3, fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"\nSaved the loss curves to {args.out}")


if __name__ == "__main__":
    main()
