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
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightning_cnn._utils.batch import class_indices
from lightning_cnn._utils.distributed import gather, gather_uneven
from lightning_cnn._utils.io import atomic_open
from lightning_cnn._utils.multilabel import is_multilabel, label_targets
from lightning_cnn._utils.protocols import HasClassNames, HasPredictIds
from lightning_cnn._utils.validation import check_probability
from lightning_cnn.functional.multilabel import labels_above

__all__ = ["PredictionWriter"]


class PredictionWriter(BasePredictionWriter):
    """Collect the class probabilities of ``predict`` and write them as ``predictions.csv``.

    Columns: ``id`` (the image's file for file sources, else its index in the DataModule's pool or test set, from
    ``datamodule.predict_ids()``; the position in the predict set without one), ``label`` (the class name when the
    batches carry labels), ``predicted``, ``confidence`` (the top probability) and, with ``probabilities=True``,
    one ``p_<class>`` column per class; with several predict loaders a first ``dataloader`` column. Rows follow the
    predict set's order. Under DDP the ranks' predictions are gathered (each image once, whether or not the
    sampler repeats some to even out the ranks), and rank 0 writes the file, through a temporary file and a
    rename, so a half-written file never replaces a complete one. Without Lightning's batch indices (an iterable
    dataset), rows come in loader order, rank by rank, and the id is the row number.

    Works with any LightningModule whose ``predict_step`` returns ``[B, num_classes]`` probabilities, or logits:
    decided once per run on the first batch (probabilities lie in [0, 1] and sum to 1 within the output dtype's
    precision), logits go through ``softmax``.

    A multi-label module (:class:`~lightning_cnn._utils.protocols.HasTask` says ``"multilabel"``) predicts a
    probability per label: ``label`` is then the image's true labels and ``predicted`` the labels whose probability
    is above ``threshold``, each list joined by ``";"``; there is no ``confidence`` column, and outputs outside
    ``[0, 1]`` are logits that go through ``sigmoid``.

    Args:
        path: the CSV file (``None``: ``predictions.csv`` in the logger's folder, else ``default_root_dir``).
        probabilities: also write each class's probability.
        class_names: names for the class indices (``None``: the DataModule's ``class_names``, else the indices).
        threshold: the probability above which a multi-label image is given a label.
        strict: raise when ``predict_step`` returns something else than ``[B, num_classes]``; with ``False``, warn
            once and write nothing (``lightning-cnn predict`` adds the writer so, for subclasses whose
            ``predict_step`` returns other things).

    Example:
        >>> PredictionWriter(path="out/preds.csv").path
        PosixPath('out/preds.csv')
    """

    def __init__(
        self,
        path: str | None = None,
        probabilities: bool = True,
        class_names: Sequence[str] | None = None,
        strict: bool = True,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(write_interval="batch")
        check_probability("threshold", threshold)
        self.threshold = threshold
        self._multilabel = False
        self.path = Path(path) if path is not None else None
        self.probabilities = probabilities
        self.class_names = list(class_names) if class_names is not None else None
        self.strict = strict
        self.written: Path | None = None
        self._reset()

    def _reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._keys: list[torch.Tensor] = []  # [n, 2]: dataloader, index in its dataset (or position)
        self._labels: list[torch.Tensor] = []
        self._seen: dict[int, int] = {}
        self._tracked = True
        self._are_probs: bool | None = None
        self._refused = False

    @override
    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check_path(self._target(trainer))

    @staticmethod
    def check_path(path: Path) -> None:
        """Refuse, before any prediction is computed, a path that cannot become the CSV file.

        Raises:
            IsADirectoryError: when ``path`` is an existing folder.
            NotADirectoryError: when a part of its folder is a file.
            PermissionError: when its folder (or the nearest one that exists) is not writable.
        """
        if path.is_dir():
            raise IsADirectoryError(
                f"Expected PredictionWriter's path to be a CSV file, but {str(path)!r} is a folder: give a file path"
                f" such as {str(path / 'predictions.csv')!r}."
            )
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise NotADirectoryError(
                f"Expected PredictionWriter's path {str(path)!r} to lie in a folder, but {str(folder)!r} is a file."
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"PredictionWriter cannot write {str(path)!r}: {str(folder)!r} is not writable.")

    def _target(self, trainer: pl.Trainer) -> Path:
        """The file to write: ``path``, else ``predictions.csv`` in the logger's folder or ``default_root_dir``."""
        return self.path or Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"

    @override
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()
        self._multilabel = is_multilabel(pl_module)

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
        if self._refused:
            return
        if not isinstance(prediction, torch.Tensor) or prediction.ndim != 2:
            if isinstance(prediction, torch.Tensor):
                got = f"a tensor of shape {list(prediction.shape)}"
            elif isinstance(prediction, dict):
                got = f"a dict with keys {list(prediction)}"
            else:
                got = f"a {type(prediction).__name__}"
            message = f"PredictionWriter expects predict_step to return [batch, classes] probabilities, but got {got}."
            if self.strict:
                raise ValueError(message)
            rank_zero_warn(f"{message} No predictions file is written.")
            self._refused = True
            return
        n, k = prediction.shape
        seen = self._seen.get(dataloader_idx, 0)
        self._seen[dataloader_idx] = seen + n
        if batch_indices is None or len(batch_indices) != n:
            self._tracked = False  # no index tracking (e.g. an iterable dataset): positions in this rank's loader
            batch_indices = range(seen, seen + n)
        probs = prediction.detach().float()
        if self._are_probs is None:  # decided once per run, on the first batch, with the output dtype's precision
            tol = max(1e-3, k * torch.finfo(prediction.dtype).eps)
            rows = probs.sum(-1)
            sums = self._multilabel or torch.allclose(rows, torch.ones_like(rows), atol=tol)  # per label: any sum
            self._are_probs = bool(probs.min() >= 0 and probs.max() <= 1 + tol and sums)
        if not self._are_probs:
            probs = probs.sigmoid() if self._multilabel else probs.softmax(-1)
        self._probs.append(probs)
        keys = torch.tensor([[dataloader_idx, i] for i in batch_indices], dtype=torch.long).reshape(n, 2)
        self._keys.append(keys.to(probs.device))
        label = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if isinstance(label, torch.Tensor) and label.shape[:1] == (n,):
            target = label_targets(label) if self._multilabel else class_indices(label)
            self._labels.append(target.to(probs.device))

    @override
    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        n = sum(len(p) for p in self._probs)
        k = self._probs[0].shape[1] if self._probs else 0
        has_labels = bool(self._probs) and len(self._labels) == len(self._probs)
        device = pl_module.device
        probs = torch.cat(self._probs) if self._probs else torch.zeros(0, 0, device=device)
        keys = torch.cat(self._keys) if self._keys else torch.zeros(0, 2, dtype=torch.long, device=device)
        labels = torch.cat(self._labels) if has_labels else torch.zeros(n, dtype=torch.long, device=device)
        labels = labels if labels.ndim == 2 or not self._multilabel else labels[:, None].expand(n, k).contiguous()
        tracked, refused = self._tracked, self._refused
        self._reset()
        ranks = torch.zeros(n, dtype=torch.long)
        if trainer.world_size > 1:
            # Every rank takes part, also one without batches; the ranks may hold different counts (Lightning's
            # predict sampler does not pad).
            meta = torch.tensor([n, k, int(has_labels), int(tracked), int(refused)], device=device)
            table = gather(pl_module, meta).reshape(-1, 5).tolist()
            counts = [row[0] for row in table]
            if sum(counts) == 0 or any(row[4] for row in table):
                return
            k = max(row[1] for row in table)
            has_labels = all(row[2] for row in table if row[0])
            tracked = all(row[3] for row in table)
            probs = probs if n else torch.zeros(0, k, device=device)
            probs = gather_uneven(pl_module, probs.to(device), counts)
            keys = gather_uneven(pl_module, keys.to(device), counts)
            labels = gather_uneven(pl_module, labels.to(device), counts)
            ranks = torch.cat([torch.full((c,), r, dtype=torch.long) for r, c in enumerate(counts)])
        elif n == 0 or refused:
            return
        if not trainer.is_global_zero:
            return
        probs, keys, labels = probs.cpu(), keys.cpu(), labels.cpu()
        # Tracked: sorted by (dataloader, index), a repeated index kept once; else by (dataloader, rank, position).
        sort_keys = keys if tracked else torch.stack([keys[:, 0], ranks, keys[:, 1]], 1)
        order = _sorted_unique_rows(sort_keys)
        probs, keys = probs[order], keys[order]
        self.written = self._write(trainer, probs, keys, labels[order] if has_labels else None, tracked)
        rank_zero_info(f"Predictions: {self.written}")

    def _sample_ids(self, trainer: pl.Trainer, keys: torch.Tensor, tracked: bool) -> list[str]:
        """The DataModule's ids when it made the (single) predict loader, else the index (or row) in the set."""
        loaders = trainer.predict_dataloaders
        loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
        dm = getattr(trainer, "datamodule", None)
        dataset = getattr(loaders[0], "dataset", None) if len(loaders) == 1 else None
        if (
            tracked
            and dataset is not None
            and isinstance(dm, HasPredictIds)
            and dataset in (dm.predict_set, dm.test_set)
        ):
            ids = dm.predict_ids()
            return [ids[i] if i < len(ids) else str(i) for i in keys[:, 1].tolist()]
        if tracked:
            return [str(i) for i in keys[:, 1].tolist()]
        return [str(i) for i in range(len(keys))]

    def _write(
        self, trainer: pl.Trainer, probs: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor | None, tracked: bool
    ) -> Path:
        k = probs.shape[1]
        dm = getattr(trainer, "datamodule", None)
        known = dm.class_names if isinstance(dm, HasClassNames) else None
        names = [str(n) for n in (self.class_names or known or range(k))]
        if len(names) != k:
            raise ValueError(f"PredictionWriter has {len(names)} class names for {k} predicted classes.")
        ids = self._sample_ids(trainer, keys, tracked)
        several = len(set(keys[:, 0].tolist())) > 1
        path = self._target(trainer)
        if self._multilabel:
            return self._write_labels(path, names, ids, probs, keys, labels, several)
        confidence, predicted = probs.max(-1)
        with atomic_open(path, "w", newline="") as file:
            writer = csv.writer(file)
            header = ["dataloader"] * several + ["id", "label", "predicted", "confidence"]
            writer.writerow(header + ([f"p_{n}" for n in names] if self.probabilities else []))
            for row, sample in enumerate(ids):
                label = names[int(labels[row])] if labels is not None else ""
                cells = [str(int(keys[row, 0]))] * several
                cells += [sample, label, names[int(predicted[row])], f"{float(confidence[row]):.6f}"]
                if self.probabilities:
                    cells += [f"{p:.6f}" for p in probs[row].tolist()]
                writer.writerow(cells)
        return path

    def _write_labels(
        self,
        path: Path,
        names: list[str],
        ids: list[str],
        probs: torch.Tensor,
        keys: torch.Tensor,
        labels: torch.Tensor | None,
        several: bool,
    ) -> Path:
        """The multi-label file: the true and the predicted labels joined by ``;``, and each label's probability."""
        predicted = labels_above(probs, names, self.threshold)
        truth = (
            None if labels is None else [[n for n, v in zip(names, row, strict=True) if v] for row in labels.tolist()]
        )
        with atomic_open(path, "w", newline="") as file:
            writer = csv.writer(file)
            header = ["dataloader"] * several + ["id", "label", "predicted"]
            writer.writerow(header + ([f"p_{n}" for n in names] if self.probabilities else []))
            for row, sample in enumerate(ids):
                cells = [str(int(keys[row, 0]))] * several
                cells += [sample, ";".join(truth[row]) if truth is not None else "", ";".join(predicted[row])]
                if self.probabilities:
                    cells += [f"{p:.6f}" for p in probs[row].tolist()]
                writer.writerow(cells)
        return path


def _sorted_unique_rows(keys: torch.Tensor) -> torch.Tensor:
    """Positions that sort the rows of ``keys`` ``[N, M]`` lexicographically, each distinct row once."""
    order = torch.arange(len(keys))
    for column in reversed(range(keys.shape[1])):  # stable sorts, last key first
        order = order[torch.argsort(keys[order, column], stable=True)]
    ordered = keys[order]
    keep = torch.ones(len(order), dtype=torch.bool)
    keep[1:] = (ordered[1:] != ordered[:-1]).any(1)
    return order[keep]
