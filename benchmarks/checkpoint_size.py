"""How much EarlyStopping(restore_best_weights=True) adds to a checkpoint: the same short run with and without it.

One epoch of a TransferClassifier (a timm backbone, random initialization, no download) on a few batches of the
bundled digits, saved by a ModelCheckpoint that keeps only last.ckpt; prints both sizes of last.ckpt, their
ratio, and the size of the best-weights file EarlyStopping writes beside it.

    python benchmarks/checkpoint_size.py                      # resnet18 (about 45 MB of weights)
    python benchmarks/checkpoint_size.py --backbone test_resnet
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, EarlyStopping, TransferClassifier


def last_checkpoint_size(backbone: str, early_stopping: bool, folder: Path) -> tuple[int, int]:
    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=16, image_size=32, rgb=True)
    model = TransferClassifier(num_classes=10, backbone=backbone, pretrained=False)
    callbacks: list[pl.Callback] = [ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0)]
    if early_stopping:
        callbacks.append(EarlyStopping(monitor="val/loss", patience=3))
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
    )
    trainer.fit(model, dm)
    extra = sum(p.stat().st_size for p in folder.glob("early_stopping_best-*.pt"))
    return (folder / "last.ckpt").stat().st_size, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        plain, _ = last_checkpoint_size(args.backbone, False, Path(tmp) / "plain")
        with_stop, weights_file = last_checkpoint_size(args.backbone, True, Path(tmp) / "early_stopping")
    print(f"backbone {args.backbone}: last.ckpt without EarlyStopping {plain:,} bytes")
    print(f"backbone {args.backbone}: last.ckpt with EarlyStopping    {with_stop:,} bytes")
    print(f"backbone {args.backbone}: best-weights file beside it     {weights_file:,} bytes (once per new best)")
    print(f"with/without ratio {with_stop / plain:.4f}")


if __name__ == "__main__":
    main()
