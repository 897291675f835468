"""The loop wiring shared by the callbacks that merge several predictions of each batch (TTA, ensembles)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError
from typing_extensions import override

from lightning_cnn._utils.batch import split_batch
from lightning_cnn._utils.validation import check_choice

__all__ = [
    "EVAL_STAGES",
    "BatchToInput",
    "EvalStage",
    "EvaluationCallback",
    "NegativeLogLikelihood",
    "forward_context",
    "make_scores",
    "replace_outputs",
    "update_scores",
]

EvalStage = Literal["val", "test", "predict"]
EVAL_STAGES: tuple[str, ...] = get_args(EvalStage)
BatchToInput = Callable[[Any], tuple[torch.Tensor, torch.Tensor | None]]


class NegativeLogLikelihood(MeanMetric):
    """The mean negative log-likelihood of the true classes, from log-probabilities ``[N, C]`` and labels ``[N]``.

    Example:
        >>> nll = NegativeLogLikelihood()
        >>> nll.update(torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log(), torch.tensor([0, 1]))
        >>> round(float(nll.compute()), 4)
        1.4979
    """

    # Its own update signature (MetricCollection hands each metric the keyword arguments its update names).
    def update(self, log_probs: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        """Add ``-log_probs[i, target[i]]`` of every sample to the mean."""
        super().update(-log_probs.gather(-1, target.view(-1, 1)).squeeze(-1))


def make_scores(num_classes: int, ece: bool = True) -> MetricCollection:
    """Accuracy (``acc``), negative log-likelihood (``nll``) and calibration error (``ece``) of one prediction stream.

    Update it with keyword arguments, ``scores.update(preds=probabilities, log_probs=log_probabilities,
    target=labels)``; ``compute()`` syncs across ranks (every rank must call it).

    Args:
        num_classes: number of classes.
        ece: include the 15-bin L1 expected calibration error (as the modules' ``test/ece``).

    Example:
        >>> scores = make_scores(2)
        >>> log_p = torch.tensor([[0.9, 0.1], [0.2, 0.8]]).log()
        >>> scores.update(preds=log_p.exp(), log_probs=log_p, target=torch.tensor([0, 0]))
        >>> sorted(scores.compute())
        ['acc', 'ece', 'nll']
    """
    metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro"), "nll": NegativeLogLikelihood()}
    if ece:
        metrics["ece"] = MulticlassCalibrationError(num_classes, n_bins=15, norm="l1")
    return MetricCollection(metrics, compute_groups=False)


def update_scores(scores: MetricCollection, log_probs: torch.Tensor, labels: torch.Tensor) -> None:
    """Update :func:`make_scores` with a batch of log-probabilities ``[B, C]`` and class labels ``[B]``."""
    scores.update(preds=log_probs.exp(), log_probs=log_probs, target=labels)


def forward_context(trainer: Trainer | None) -> contextlib.AbstractContextManager:
    """The precision plugin's autocast context of ``trainer`` (none without a trainer), for extra forwards."""
    plugin = getattr(trainer, "precision_plugin", None) if trainer is not None else None
    return plugin.forward_context() if plugin is not None else contextlib.nullcontext()


def replace_outputs(outputs: Any, probs: torch.Tensor) -> None:
    """Write ``probs`` into a predict step's ``[B, C]`` output tensor, so the trainer returns them."""
    if isinstance(outputs, torch.Tensor) and outputs.shape == probs.shape and outputs.is_floating_point():
        outputs.copy_(probs.to(outputs.dtype))


class EvaluationCallback(Callback):
    """Base of the callbacks that merge several predictions of each batch, in the loops of ``stages``.

    A subclass gives :meth:`evaluate_batch` (the merged log-probabilities of a batch; it updates its metrics) and
    :meth:`log_epoch` (logs them); this base calls them in the validation, test and predict loops of ``stages``,
    keeps the merged test probabilities for :attr:`test_probabilities` and the predict ones in
    :attr:`predictions`, and in predict writes them into a ``[B, num_classes]`` output of ``predict_step``.

    Args:
        stages: loops to run in: ``"val"`` (validation, also during fit), ``"test"``, ``"predict"``.
        batch_to_input: a function from a batch to ``(images, labels or None)``.

    Raises:
        ValueError: for an unknown stage.
    """

    probability_name = "merged"

    def __init__(self, stages: Sequence[EvalStage], batch_to_input: BatchToInput | None = None) -> None:
        super().__init__()
        stage_names: tuple[str, ...] = (stages,) if isinstance(stages, str) else tuple(stages)
        for stage in stage_names:
            check_choice("stages", stage, EVAL_STAGES)
        self.stages = stage_names
        self._batch_to_input = batch_to_input
        self.predictions: list[torch.Tensor] = []
        self._test_probs: list[torch.Tensor] = []
        self._scores: dict[str, Any] = {}  # per stage: the subclass's metrics, made at its first labelled batch

    def batch_to_input(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(images [B, C, H, W], labels [B] or None)`` of a batch; override for other shapes."""
        if self._batch_to_input is not None:
            return self._batch_to_input(batch)
        return split_batch(batch)

    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` of ``module`` for images ``[N, C, H, W]``; override for other models."""
        return module(x)

    def evaluate_batch(
        self, trainer: Trainer, module: LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> torch.Tensor:
        """Merged log-probabilities ``[B, C]`` of ``batch``, with the metrics of ``stage`` updated."""
        raise NotImplementedError

    def log_epoch(self, module: LightningModule, stage: str) -> None:
        """Log the metrics ``self._scores[stage]`` (every rank calls it: computing them syncs) and reset them."""
        raise NotImplementedError

    def _epoch_end(self, module: LightningModule, stage: str) -> None:
        if stage in self.stages and stage in self._scores:
            self.log_epoch(module, stage)

    @staticmethod
    def log_values(module: LightningModule, stage: str, values: dict[str, torch.Tensor], prefix: str = "") -> None:
        """Log ``{stage}/{prefix}{name}`` per epoch (the values are already synced across ranks)."""
        for name, value in values.items():
            module.log(f"{stage}/{prefix}{name}", value, on_step=False, on_epoch=True, sync_dist=False)

    def _batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, index: int, stage: str
    ) -> None:
        """Merge the batch's predictions in a loop of ``stages``; keep them in test, hand them out in predict."""
        if stage not in self.stages:
            return
        log_probs = self.evaluate_batch(trainer, module, batch, index, stage)
        if stage == "test":
            self._test_probs.append(log_probs.detach().exp().cpu())
        elif stage == "predict":
            probs = log_probs.exp()
            replace_outputs(outputs, probs)
            self.predictions.append(probs.cpu())

    # Lightning passes each batch-end hook ``(trainer, pl_module, outputs, batch, batch_idx[, dataloader_idx])``
    # by position: the names below are shorter, the order is Lightning's.
    @override
    def on_validation_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, index: int, loader: int = 0
    ) -> None:
        if not trainer.sanity_checking:  # the sanity check's few batches are no evaluation
            self._batch_end(trainer, module, outputs, batch, index, "val")

    @override
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._epoch_end(pl_module, "val")

    @override
    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._test_probs = []

    @override
    def on_test_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, index: int, loader: int = 0
    ) -> None:
        self._batch_end(trainer, module, outputs, batch, index, "test")

    @override
    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(pl_module, "test")

    @property
    def test_probabilities(self) -> dict[str, torch.Tensor]:
        """This rank's merged test probabilities ``[N, C]`` of the last test run, in batch order.

        :class:`~lightning_cnn.TrainingPlots` draws them in its reliability diagram.
        """
        return {self.probability_name: torch.cat(self._test_probs)} if self._test_probs else {}

    @override
    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.predictions = []

    @override
    def on_predict_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, index: int, loader: int = 0
    ) -> None:
        self._batch_end(trainer, module, outputs, batch, index, "predict")
