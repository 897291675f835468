"""The classifier's task, learned from the data: multiclass (softmax) or multi-label (a sigmoid per label).

A DataModule whose labels are a 0/1 matrix ``[N, L]`` says ``task="multilabel"`` in its input contract; the
module learns it with the rest of the contract (:mod:`~lightning_cnn.models.contract`), so it is saved in the
checkpoint and a loaded model knows it. For a multi-label task the module then trains with sigmoid binary
cross-entropy (``loss="cross_entropy"``, the default, means it there), scores with torchmetrics' multi-label
metrics and predicts per-label sigmoid probabilities.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import Metric

from lightning_cnn._utils.batch import class_indices
from lightning_cnn._utils.multilabel import MULTILABEL, label_targets
from lightning_cnn.losses import build_loss, multilabel_loss
from lightning_cnn.models.contract import InputContract
from lightning_cnn.models.metrics import eval_metrics, train_accuracy

__all__ = ["LearnsTask"]


class LearnsTask:
    """The task's part of a classifier (a mixin of :class:`~lightning_cnn.models.ClassifierModule`).

    :meth:`adopt_task` (called in ``setup``, after the input contract is learned or restored) rebuilds the loss
    and the metrics when the contract's task is not the one they were built for; :meth:`probabilities` and
    :meth:`metric_target` turn logits and labels into what the task's metrics take.
    """

    input_contract: InputContract
    hparams: Any
    criterion: nn.Module | None
    train_acc: Metric
    val_metrics: nn.ModuleDict
    test_metrics: nn.ModuleDict
    _loss_options: dict[str, Any]
    device: torch.device

    #: The task the loss and the metrics are built for (``__init__`` builds the multiclass ones).
    built_task: str = "multiclass"

    @property
    def task(self) -> str:
        """``"multilabel"`` or ``"multiclass"``, as the input contract says (learned from the data)."""
        return self.input_contract.task

    @property
    def multilabel(self) -> bool:
        """Whether the task is multi-label (a sigmoid per label)."""
        return self.input_contract.task == MULTILABEL

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, C]`` (softmax), or per-label probabilities ``[B, L]`` (sigmoid), in float32."""
        logits = logits.float()
        return logits.sigmoid() if self.multilabel else logits.softmax(-1)

    def metric_target(self, y: torch.Tensor) -> torch.Tensor:
        """Class indices ``[B]`` for a multiclass task; 0/1 int64 targets ``[B, L]`` for a multi-label one."""
        return label_targets(y) if self.multilabel else class_indices(y)

    def adopt_task(self) -> None:
        """Build the loss and the metrics of the contract's task, when they were built for the other one.

        Raises:
            ValueError: for a multi-label task with a loss that needs one class per image (named), or with
                ``class_weights`` (use ``pos_weight``).
        """
        task = self.task
        if task == self.built_task:
            return
        hp = self.hparams
        loss = hp["loss"]
        if task == MULTILABEL:
            if hp.get("class_weights") is not None:
                raise ValueError(
                    f"Expected class_weights=None for multi-label data (a 0/1 label matrix), but got"
                    f" {hp['class_weights']!r}: class weights weigh the classes of one softmax. Weigh each label's"
                    " positives with pos_weight instead."
                )
            loss = multilabel_loss(loss)
        self.criterion = build_loss(loss, class_weights=hp.get("class_weights"), **self._loss_options).to(self.device)
        num_classes, top_k = int(hp["num_classes"]), int(hp["top_k"])
        self.train_acc = train_accuracy(num_classes, task).to(self.device)
        self.val_metrics = eval_metrics(num_classes, top_k, task).to(self.device)
        self.test_metrics = eval_metrics(num_classes, top_k, task).to(self.device)
        self.built_task = task
