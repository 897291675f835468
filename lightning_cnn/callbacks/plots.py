"""TrainingPlots: learning curves, confusion matrix and reliability diagram as PNG files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics.functional.classification import multiclass_calibration_error, multiclass_confusion_matrix
from typing_extensions import override

from lightning_cnn._utils.batch import class_indices
from lightning_cnn._utils.distributed import gather
from lightning_cnn._utils.multilabel import is_multilabel
from lightning_cnn._utils.protocols import HasClassNames, HasTestProbabilities
from lightning_cnn.callbacks.figures import send_figure

__all__ = [
    "TrainingPlots",
    "calibration_error",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_reliability",
    "reliability_bins",
]


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_curves(history: dict[str, list[float]], path: str | Path) -> Path:
    """Write training and validation loss and accuracy per epoch, side by side, as one PNG.

    Args:
        history: lists per key among ``train/loss``, ``val/loss``, ``train/acc``, ``val/acc``, one value per epoch.
        path: the PNG file to write.

    Returns:
        The path written.
    """
    fig = _figure(10, 4)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "acc"), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = history.get(f"{split}/{metric}", [])
            if values:
                ax.plot(range(len(values)), values, style, label=split, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if metric == "acc" else "loss")
        ax.set_title("Accuracy" if metric == "acc" else "Loss")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    fig.suptitle("Training and validation per epoch (a widening gap means overfitting)")
    fig.savefig(path)
    return Path(path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Write a confusion matrix (rows: true class, columns: predicted class) with counts as a PNG."""
    k = len(class_names)
    size = max(4.0, 0.45 * k + 2)
    fig = _figure(size, size)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    color = "white" if matrix[i, j] > top / 2 else "black"
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=color, fontsize=8)
    acc = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(title or f"Confusion matrix (accuracy {acc:.3f})")
    fig.savefig(path)
    return Path(path)


def confusion_matrix(probs: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Counts ``[K, K]`` of (true class, predicted class) pairs, from probabilities ``[N, K]`` and labels ``[N]``.

    Example:
        >>> confusion_matrix(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([0, 1, 1])).tolist()
        [[1, 0], [1, 1]]
    """
    matrix = multiclass_confusion_matrix(probs.argmax(-1), target, num_classes=probs.shape[-1])
    return matrix.cpu().numpy().astype(np.int64)


def calibration_error(probs: torch.Tensor, target: torch.Tensor, bins: int = 15) -> float:
    """The L1 expected calibration error over ``bins`` equal-width confidence bins, as the modules' ``test/ece``.

    Example:
        >>> round(calibration_error(torch.tensor([[0.9, 0.1], [0.4, 0.6]]), torch.tensor([0, 0])), 3)
        0.35
    """
    probs = probs.float()
    return float(multiclass_calibration_error(probs, target, num_classes=probs.shape[-1], n_bins=bins, norm="l1"))


def reliability_bins(probs: torch.Tensor, target: torch.Tensor, bins: int = 15) -> tuple[list[float], list[float]]:
    """Mean confidence and accuracy of each non-empty equal-width confidence bin: the points of the diagram.

    Example:
        >>> reliability_bins(torch.tensor([[0.9, 0.1], [0.4, 0.6]]), torch.tensor([0, 0]), bins=2)
        ([0.75], [0.5])
    """
    conf, pred = probs.float().max(-1)
    correct = (pred == target).float()
    idx = torch.bucketize(conf, torch.linspace(0, 1, bins + 1)[1:-1])
    xs, ys = [], []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            xs.append(conf[mask].mean().item())
            ys.append(correct[mask].mean().item())
    return xs, ys


def plot_reliability(curves: dict[str, tuple[torch.Tensor, torch.Tensor]], path: str | Path, bins: int = 15) -> Path:
    """Write a reliability diagram: accuracy against confidence per bin, one line per prediction kind.

    Each line's label gives its :func:`calibration_error` (torchmetrics' ``MulticlassCalibrationError``).

    Args:
        curves: ``{name: (probabilities [N, K], targets [N])}``, e.g. plain, TTA and ensemble predictions.
        path: the PNG file to write.
        bins: number of equal-width confidence bins.
    """
    fig = _figure(5, 5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for name, (probs, target) in curves.items():
        xs, ys = reliability_bins(probs, target, bins)
        ece = calibration_error(probs, target, bins)
        ax.plot(xs, ys, "-o", markersize=3, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left")
    fig.savefig(path)
    return Path(path)


class TrainingPlots(Callback):
    """Write the plots people would rather look at than read, into the run folder.

    - ``curves.png`` at the end of ``fit``: training and validation loss and accuracy per epoch (from the logged
      ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``).
    - ``confusion_matrix.png`` and ``reliability.png`` at the end of ``test``, from the test step's outputs
      (logits ``[B, K]``) and labels; the reliability diagram adds a line for every other callback that exposes
      test probabilities as ``test_probabilities`` (``{name: tensor [N, K]}``).

    Figures go to ``dirpath`` (default: the logger's folder, else ``default_root_dir``), and to every logger that
    takes images: TensorBoard, MLflow and W&B (:func:`~lightning_cnn.callbacks.figures.send_figure`).
    Only rank 0 writes; test outputs are gathered from every rank.

    Args:
        dirpath: folder of the PNG files.
        class_names: names for the confusion matrix (default: the DataModule's ``class_names``, else indices).

    Example:
        >>> TrainingPlots(dirpath="plots").dirpath
        'plots'
    """

    def __init__(self, dirpath: str | None = None, class_names: list[str] | None = None) -> None:
        self.dirpath = dirpath
        self.class_names = class_names
        self.history: dict[str, list[float]] = {}
        self._probs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self.written: list[Path] = []
        self.reliability_curves: list[str] = []
        self.calibration_errors: dict[str, float] = {}  # the ECE of each line of the last reliability diagram

    # ------------------------------------------------------------------ where
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective under DDP: every rank resolves it here, not rank 0 alone later.
        self._dir = Path(self.dirpath or trainer.log_dir or trainer.default_root_dir)

    def _folder(self, trainer: pl.Trainer) -> Path:
        folder = getattr(self, "_dir", None) or Path(self.dirpath or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _emit(self, trainer: pl.Trainer, path: Path) -> None:
        self.written.append(path)
        send_figure(trainer, f"plots/{path.stem}", path)  # TensorBoard, MLflow, W&B

    # ------------------------------------------------------------------ fit
    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's own on_validation_epoch_end: values it logs there are in by now.
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        for key in ("val/loss", "val/acc"):
            if key in metrics:
                self.history.setdefault(key, []).append(float(metrics[key]))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record_train(trainer, trainer.current_epoch)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._record_train(trainer, trainer.current_epoch - 1)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record_train(trainer, trainer.current_epoch - 1)

    def _record_train(self, trainer: pl.Trainer, epoch: int) -> None:
        """Record (or, once the module's own on_train_epoch_end has logged, correct) epoch ``epoch``'s values.

        Callbacks' on_train_epoch_end runs before the module's, so a value the module logs there arrives later.
        """
        metrics = trainer.callback_metrics
        for key in ("train/loss", "train/acc"):
            if key not in metrics or epoch < 0:
                continue
            values = self.history.setdefault(key, [])
            values.extend([math.nan] * (epoch - len(values)))  # an epoch missed (a resume): a gap in the curve
            if len(values) == epoch:
                values.append(float(metrics[key]))
            else:
                values[epoch] = float(metrics[key])

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
            self._emit(trainer, plot_curves(self.history, self._folder(trainer) / "curves.png"))

    # ------------------------------------------------------------------ test
    @override
    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._probs, self._targets = [], []

    @override
    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2 or is_multilabel(pl_module):
            return  # a multi-label module has no confusion matrix or reliability diagram of one softmax
        target = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if not isinstance(target, torch.Tensor):
            return
        target = class_indices(target)
        # Kept where they are: one copy to the host at the end of the epoch instead of a wait for the device per batch.
        self._probs.append(outputs.detach().float().softmax(-1))
        self._targets.append(target.detach())

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._probs:
            return
        probs, target = torch.cat(self._probs), torch.cat(self._targets)
        self._probs, self._targets = [], []
        local_shape = probs.shape
        if trainer.world_size > 1:
            probs, target = gather(pl_module, probs).flatten(0, 1), gather(pl_module, target).flatten(0, 1)
        # Other callbacks' probabilities of the same test set (this rank's), gathered the same way: every rank
        # takes part in the collective, rank 0 draws.
        extras: dict[str, torch.Tensor] = {}
        for callback in getattr(trainer, "callbacks", []):
            if isinstance(callback, HasTestProbabilities):
                for name, p in callback.test_probabilities.items():
                    if isinstance(p, torch.Tensor) and p.shape == local_shape:
                        if trainer.world_size > 1:
                            p = gather(pl_module, p.to(probs.device)).flatten(0, 1)
                        extras[str(name)] = p.cpu()
        probs, target = probs.cpu(), target.cpu()
        if not trainer.is_global_zero:
            return
        k = probs.shape[1]
        datamodule = getattr(trainer, "datamodule", None)
        given = self.class_names or (datamodule.class_names if isinstance(datamodule, HasClassNames) else None)
        names = [str(n) for n in (given or range(k))][:k]
        folder = self._folder(trainer)
        matrix = confusion_matrix(probs, target)
        self._emit(trainer, plot_confusion_matrix(matrix, names, folder / "confusion_matrix.png"))
        curves = {"plain": (probs, target)} | {name: (p, target) for name, p in extras.items()}
        self.reliability_curves = list(curves)
        self.calibration_errors = {name: calibration_error(p, t) for name, (p, t) in curves.items()}
        self._emit(trainer, plot_reliability(curves, folder / "reliability.png"))

    # ------------------------------------------------------------------ state
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {k: [float(x) for x in v] for k, v in state_dict.get("history", {}).items()}
