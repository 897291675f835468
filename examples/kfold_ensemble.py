"""K-fold cross-validation on digits, then the ensemble of the K fold models on the fixed test split.

Each fold k trains a SimpleCNN with fold k as validation and the other K-1 folds as training data, keeping the
checkpoint of its best validation epoch. The test split is the same for every fold (the single split's), and no
fold opens it in fit. Each fold's best model is then tested alone, and the K of them together with
`EnsembleEvaluation` (mean probability). Prints each fold's test accuracy, their mean and the ensemble's.

The same with the command line, fold by fold: `lightning-cnn fit --data.num_folds 5 --data.fold 2 ...`.

Run: python examples/kfold_ensemble.py [--folds 5] [--epochs 5] [--out runs/kfold]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, EnsembleEvaluation, SimpleCNN

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def train_fold(fold: int, folds: int, epochs: int, out: Path) -> str:
    """Train on every fold but ``fold``; return the path of the best validation epoch's checkpoint."""
    pl.seed_everything(fold, verbose=False)
    best = ModelCheckpoint(dirpath=out / f"fold{fold}", filename="best", monitor="val/acc", mode="max")
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[best], default_root_dir=out / f"fold{fold}", **QUIET)
    trainer.fit(SimpleCNN(channels=(16, 32), hidden=(64,), lr=3e-3), DigitsDataModule(num_folds=folds, fold=fold))
    return best.best_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/kfold"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*callbacks used to create the checkpoint.*")
    paths = [train_fold(k, args.folds, args.epochs, args.out) for k in range(args.folds)]

    accuracies = []
    for k, path in enumerate(paths):
        tester = pl.Trainer(default_root_dir=args.out / f"fold{k}", **QUIET)  # where that fold's splits.json is
        data = DigitsDataModule(num_folds=args.folds, fold=k)  # a checkpoint is tested with its own fold setting
        result = tester.test(SimpleCNN.load_from_checkpoint(path), data, ckpt_path=path, verbose=False)[0]
        accuracies.append(result["test/acc"])
        print(f"fold {k}: test accuracy {result['test/acc']:.4f}")
    mean = sum(accuracies) / len(accuracies)
    print(f"mean fold test accuracy: {mean:.4f}")

    # Fold 0's model runs the test; the other folds' checkpoints are the other members. Members of other folds are
    # allowed on the test split (the same for every fold), and refused on fold 0's validation set (their training data).
    ensemble = EnsembleEvaluation(checkpoints=paths[1:])
    tester = pl.Trainer(callbacks=[ensemble], default_root_dir=args.out / "fold0", **QUIET)
    data = DigitsDataModule(num_folds=args.folds, fold=0)
    result = tester.test(SimpleCNN.load_from_checkpoint(paths[0]), data, ckpt_path=paths[0], verbose=False)[0]
    print(f"ensemble of {args.folds} folds: test accuracy {result['test/ensemble_acc']:.4f}")


if __name__ == "__main__":
    main()
