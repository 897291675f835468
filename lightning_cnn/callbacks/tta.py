"""Test-time augmentation: predict on several views of each batch (or with dropout on) and merge them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from typing_extensions import override

from lightning_cnn._utils.batch import class_indices
from lightning_cnn._utils.multilabel import is_multilabel
from lightning_cnn._utils.protocols import HasAugmentation
from lightning_cnn._utils.validation import check_positive
from lightning_cnn.augment import build_augmentation
from lightning_cnn.callbacks.evaluation import (
    EvalStage,
    EvaluationCallback,
    forward_context,
    make_scores,
    update_scores,
)
from lightning_cnn.callbacks.multilabel import as_log_probs, make_label_scores, update_label_scores
from lightning_cnn.functional import MergeMode, merge_label_probs
from lightning_cnn.tta import TTAModel, View, ViewName, is_dropout, make_views

__all__ = ["TestTimeAugmentation"]


class TestTimeAugmentation(EvaluationCallback):
    """Evaluate (and predict) on several views of each batch, merged into one prediction.

    In the validation, test and predict loops, after the module's own step, the callback passes the
    batch's images (on the device, as the module takes them: raw for a module that normalizes its input itself,
    as the package's do, normalized by the DataModule otherwise) through ``K`` deterministic views (see
    :func:`~lightning_cnn.tta.make_views`) — and, with ``mc_dropout=n``, ``n`` times each with the dropout layers active
    (Monte Carlo dropout) — and merges the ``K·n`` predictions with
    :func:`~lightning_cnn.functional.merge_log_probs`. It logs ``{stage}/tta_acc``, ``{stage}/tta_nll``
    and ``{stage}/tta_ece`` beside the module's own metrics (for a multi-label module, whose views' sigmoid
    probabilities are merged label by label with :func:`~lightning_cnn.functional.merge_label_probs`:
    ``tta_acc``, ``tta_f1``, ``tta_map`` and ``tta_exact_match``), from torchmetrics objects it owns (synced
    across ranks). In predict it stores the merged probabilities in :attr:`predictions` and, when the
    module's ``predict_step`` returns a ``[B, num_classes]`` tensor, writes them into it, so
    ``trainer.predict`` returns the TTA probabilities.

    The work is a :class:`~lightning_cnn.tta.TTAModel` around the module (a plain ``nn.Module``, usable without
    a Trainer). Views go through the model in chunks of at most ``max_batch`` images: with ``batched=True`` several
    views are concatenated into one forward (fast on a GPU); with ``batched=False`` each view is its own
    forward (on a CPU that is as fast or faster, and needs less memory). ``batched=None`` picks
    concatenation on CUDA and the loop elsewhere. The module must be in eval mode (Lightning does that);
    note that concatenated views share a forward, so BatchNorm in train mode would mix them.

    Works with any LightningModule whose ``forward`` returns logits; override :meth:`batch_to_input`
    (or pass ``batch_to_input``) for batches that are not ``(x, y)`` and :meth:`forward` for models that
    need more than ``module(x)``.

    Args:
        views: view and preset names (see :func:`~lightning_cnn.tta.make_views`); ``K`` is the number after expansion.
        merge: ``"mean"`` (of probabilities), ``"gmean"``, ``"max"``, ``"logits"`` (mean logit) or
            ``"vote"`` (majority vote).
        mc_dropout: passes with dropout active per view (``0``: dropout stays off).
        batched: concatenate views into one forward; ``None``: on CUDA only.
        max_batch: most images per forward; ``None``: no limit when batched, one view per forward
            otherwise.
        stages: loops to run in: ``"val"`` (validation, also during fit), ``"test"``, ``"predict"``.
        shift: pixels of the shift views.
        zoom: amount of the zoom views.
        crop_fraction: side fraction of the ``five_crop`` / ``ten_crop`` crops.
        num_classes: number of classes; ``None``: read from the first logits.
        seed: seed of the Monte Carlo dropout masks (per batch and rank).
        batch_to_input: a function from a batch to ``(images, labels or None)``.
        random_passes: passes of random training augmentation, blended with the views (``0``: none). The
            augmentation runs on the batch as the module takes it (raw for the package's modules, which
            normalize it themselves): geometric augmentations act as in training, colour jitter on the values given.
        random_weight: weight of the views' merged prediction in the blend (fastai's ``beta``).
        augment: the augmentation of the random passes (a preset, list or dict, as the DataModule's
            ``augment``); ``None``: the DataModule's own.

    Raises:
        ValueError: for an unknown view, merge mode or stage, or an out-of-range number.

    Example:
        >>> tta = TestTimeAugmentation(views=("identity", "hflip"), merge="gmean")
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
        >>> tta.num_views, tta.view_logits(net, torch.randn(2, 1, 4, 4)).shape
        (2, torch.Size([2, 2, 3]))
        >>> trainer = Trainer(callbacks=[tta], logger=False)  # doctest: +SKIP
    """

    __test__ = False  # not a pytest test class, despite its name
    probability_name = "tta"
    is_dropout = staticmethod(is_dropout)  # which modules Monte Carlo dropout switches on; override to change

    def __init__(
        self,
        views: Sequence[ViewName] = ("identity", "hflip"),
        merge: MergeMode = "mean",
        mc_dropout: int = 0,
        batched: bool | None = None,
        max_batch: int | None = None,
        stages: Sequence[EvalStage] = ("val", "test", "predict"),
        shift: int = 1,
        zoom: float = 0.1,
        crop_fraction: float = 0.875,
        num_classes: int | None = None,
        seed: int = 0,
        batch_to_input: Callable[[Any], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
        random_passes: int = 0,
        random_weight: float = 0.25,
        augment: str | list[str] | dict[str, Any] | None = None,
    ) -> None:
        super().__init__(stages, batch_to_input)
        if num_classes is not None:
            check_positive("num_classes", num_classes)
        self.view_names = (views,) if isinstance(views, str) else tuple(views)
        self.views: list[View] = make_views(self.view_names, shift=shift, zoom=zoom, crop_fraction=crop_fraction)
        self.merge = merge
        self.mc_dropout = mc_dropout
        self.batched = batched
        self.max_batch = max_batch
        self.random_passes = random_passes
        self.random_weight = random_weight
        self.num_classes = num_classes
        self.seed = seed
        self._augmentation: nn.Module | None = build_augmentation(augment) if augment is not None else None
        self.wrap(nn.Identity())  # checks the other arguments now, not at the first batch
        self.mc_dropout, self.random_passes, self.random_weight = (
            int(mc_dropout),
            int(random_passes),
            float(random_weight),
        )

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The module learns its task after the callbacks' setup: the DataModule tells it already.
        if is_multilabel(pl_module) or is_multilabel(getattr(trainer, "datamodule", None)):
            self._refuse_random_passes()
        if self.random_passes and self._augmentation is None:
            datamodule = getattr(trainer, "datamodule", None)
            if isinstance(datamodule, HasAugmentation):
                self._augmentation = datamodule.augmentation
            if self._augmentation is None:
                raise ValueError(
                    f"random_passes={self.random_passes} replays the training augmentation, but the DataModule has"
                    " none: give augment (a preset, list or dict, as the DataModule's augment) to the callback."
                )

    def _refuse_random_passes(self) -> None:
        if self.random_passes:
            raise ValueError(
                f"Expected random_passes=0 for a multi-label module (its views are merged label by label), but got"
                f" random_passes={self.random_passes}. Use deterministic views (and mc_dropout) only."
            )

    @property
    def state_key(self) -> str:
        # Lightning's protected helper for a state key that tells two instances apart (its own callbacks use it).
        return self._generate_state_key(views=self.view_names, merge=self.merge, mc_dropout=self.mc_dropout)

    @property
    def num_views(self) -> int:
        """``K``: predictions merged per sample (views times Monte Carlo passes)."""
        return len(self.views) * max(self.mc_dropout, 1)

    def wrap(self, module: nn.Module) -> TTAModel:
        """``module`` in a :class:`~lightning_cnn.tta.TTAModel` with this callback's views and settings."""
        return TTAModel(
            module,
            self.views,
            self.merge,
            mc_dropout=self.mc_dropout,
            batched=self.batched,
            max_batch=self.max_batch,
            random_passes=self.random_passes,
            random_weight=self.random_weight,
            augmentation=self._augmentation,
            seed=self.seed,
            forward_fn=self.forward,
            dropout_filter=self.is_dropout,
        )

    def view_logits(self, module: nn.Module, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Logits of every view (and Monte Carlo pass) of images ``[B, C, H, W]``, stacked as ``[K, B, C]``.

        Args:
            module: the classifier (in eval mode).
            x: images.
            seed: seed of the dropout masks when ``mc_dropout > 0``.
        """
        return self.wrap(module).view_logits(x, seed)

    def merged_log_probs(self, module: nn.Module, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Merged log-probabilities ``[B, num_classes]`` of the views of images ``[B, C, H, W]``.

        With ``random_passes=n`` the views' merged probabilities are blended with the mean probabilities of
        ``n`` randomly augmented passes: ``random_weight * views + (1 - random_weight) * augmented``.
        """
        return self.wrap(module)(x, seed)

    # ------------------------------------------------------------------ hooks
    @override
    def evaluate_batch(
        self, trainer: Trainer, module: LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> torch.Tensor:
        x, y = self.batch_to_input(batch)
        seed = self.seed + batch_idx + 1_000_003 * trainer.global_rank
        if is_multilabel(module):  # per-label sigmoid probabilities, merged label by label
            self._refuse_random_passes()
            with forward_context(trainer):
                probs = merge_label_probs(self.view_logits(module, x, seed).float(), self.merge)
            if y is not None and stage != "predict":
                scores = self._scores.get(stage)
                if scores is None:
                    scores = self._scores[stage] = make_label_scores(self.num_classes or probs.shape[-1])
                update_label_scores(scores, probs, y)
            return as_log_probs(probs)
        with forward_context(trainer):
            log_probs = self.merged_log_probs(module, x, seed).float()
        if y is not None and stage != "predict":
            scores = self._scores.get(stage)
            if scores is None:
                scores = self._scores[stage] = make_scores(self.num_classes or log_probs.shape[-1])
            update_scores(scores.to(log_probs.device), log_probs, class_indices(y))
        return log_probs

    @override
    def log_epoch(self, module: LightningModule, stage: str) -> None:
        scores = self._scores[stage]
        self.log_values(module, stage, scores.compute(), prefix="tta_")
        scores.reset()
