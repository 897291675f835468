"""Write what ``predict`` returns to a CSV file: one row per image, in the order of the predict set."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

__all__ = ["PredictionWriter"]


class PredictionWriter(BasePredictionWriter):
    """Collect the class probabilities of ``predict`` and write them as ``predictions.csv``.

    Columns: ``id`` (the image's file for file sources, else its index in the DataModule's pool or test set, from
    ``datamodule.predict_ids()``; the position in the predict set without one), ``label`` (the class name when the
    batches carry labels), ``predicted``, ``confidence`` (the top probability) and, with ``probabilities=True``,
    one ``p_<class>`` column per class. Rows follow the predict set's order. Under DDP the ranks' predictions are
    gathered (each image once, whether or not the sampler repeats some to even out the ranks), and rank 0 writes
    the file, through a temporary file and a rename, so a half-written file never replaces a complete one.

    Works with any LightningModule whose ``predict_step`` returns ``[B, num_classes]`` probabilities (or logits:
    they are passed through ``softmax`` unless every row already sums to 1).

    Args:
        path: the CSV file (``None``: ``predictions.csv`` in the logger's folder, else ``default_root_dir``).
        probabilities: also write each class's probability.
        class_names: names for the class indices (``None``: the DataModule's ``class_names``, else the indices).

    Example:
        >>> PredictionWriter(path="out/preds.csv").path
        PosixPath('out/preds.csv')
    """

    def __init__(
        self, path: str | None = None, probabilities: bool = True, class_names: Sequence[str] | None = None
    ) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path) if path is not None else None
        self.probabilities = probabilities
        self.class_names = list(class_names) if class_names is not None else None
        self.written: Path | None = None
        self._reset()

    def _reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._indices: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._seen = 0

    @override
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    @override
    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, torch.Tensor) or prediction.ndim != 2:
            got = f"a tensor of shape {list(prediction.shape)}" if isinstance(prediction, torch.Tensor) else prediction
            raise ValueError(
                f"PredictionWriter expects predict_step to return [batch, classes] probabilities, but got {got!r}."
            )
        n = prediction.shape[0]
        if batch_indices is None or len(batch_indices) != n:
            batch_indices = range(self._seen, self._seen + n)  # no index tracking: the loader's order
        self._seen += n
        probs = prediction.detach().float()
        if not torch.allclose(probs.sum(-1), torch.ones(n, device=probs.device), atol=1e-3):
            probs = probs.softmax(-1)
        self._probs.append(probs)
        self._indices.append(torch.as_tensor(list(batch_indices), dtype=torch.long, device=probs.device))
        label = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if isinstance(label, torch.Tensor) and label.shape[:1] == (n,):
            self._labels.append((label.argmax(-1) if label.is_floating_point() else label).long().to(probs.device))

    @override
    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._probs:
            return
        probs, indices = torch.cat(self._probs), torch.cat(self._indices)
        labels = torch.cat(self._labels) if len(self._labels) == len(self._probs) else None
        if trainer.world_size > 1:
            # Lightning's predict sampler does not pad: the ranks may hold different counts.
            counts = _gather(pl_module, torch.tensor([probs.shape[0]], device=probs.device)).flatten().tolist()
            probs = _gather_uneven(pl_module, probs, counts)
            indices = _gather_uneven(pl_module, indices, counts)
            if labels is not None:
                labels = _gather_uneven(pl_module, labels, counts)
        self._reset()
        if not trainer.is_global_zero:
            return
        probs, indices = probs.cpu(), indices.cpu()
        order = _first_occurrences(indices)  # sorted by index, the sampler's padding repeats dropped
        probs, indices = probs[order], indices[order]
        labels = labels.cpu()[order] if labels is not None else None
        self.written = self._write(trainer, probs, indices, labels)
        rank_zero_info(f"Predictions: {self.written}")

    def _write(
        self, trainer: pl.Trainer, probs: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor | None
    ) -> Path:
        k = probs.shape[1]
        dm = getattr(trainer, "datamodule", None)
        names = [str(n) for n in (self.class_names or getattr(dm, "class_names", None) or range(k))]
        if len(names) != k:
            raise ValueError(f"PredictionWriter has {len(names)} class names for {k} predicted classes.")
        ids_of = getattr(dm, "predict_ids", None)
        ids = ids_of() if callable(ids_of) else None
        path = self.path or Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        confidence, predicted = probs.max(-1)
        with open(tmp, "w", newline="") as file:
            writer = csv.writer(file)
            header = ["id", "label", "predicted", "confidence"]
            writer.writerow(header + ([f"p_{n}" for n in names] if self.probabilities else []))
            for row, index in enumerate(indices.tolist()):
                sample = ids[index] if ids is not None and index < len(ids) else str(index)
                label = names[int(labels[row])] if labels is not None else ""
                cells = [sample, label, names[int(predicted[row])], f"{float(confidence[row]):.6f}"]
                if self.probabilities:
                    cells += [f"{p:.6f}" for p in probs[row].tolist()]
                writer.writerow(cells)
        os.replace(tmp, path)
        return path


def _gather(pl_module: pl.LightningModule, tensor: torch.Tensor) -> torch.Tensor:
    gathered = pl_module.all_gather(tensor)
    assert isinstance(gathered, torch.Tensor)
    return gathered


def _gather_uneven(pl_module: pl.LightningModule, tensor: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order, when the ranks hold ``counts`` rows each."""
    pad = max(counts) - tensor.shape[0]
    if pad:
        tensor = torch.cat([tensor, tensor.new_zeros((pad, *tensor.shape[1:]))])
    gathered = _gather(pl_module, tensor)
    return torch.cat([gathered[rank, :n] for rank, n in enumerate(counts)])


def _first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Positions of each distinct index's first occurrence, in increasing index order."""
    order = torch.argsort(indices, stable=True)
    keep = torch.ones_like(order, dtype=torch.bool)
    keep[1:] = indices[order][1:] != indices[order][:-1]
    return order[keep]
