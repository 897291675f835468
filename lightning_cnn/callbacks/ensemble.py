"""Ensemble evaluation: run several trained models on the batches the trainer already loads."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.func import functional_call, stack_module_state
from torchmetrics import MetricCollection
from typing_extensions import override

from lightning_cnn._utils.batch import class_indices
from lightning_cnn._utils.multilabel import is_multilabel
from lightning_cnn._utils.protocols import ChecksCheckpointData
from lightning_cnn._utils.validation import check_choice
from lightning_cnn.callbacks.evaluation import (
    EvalStage,
    EvaluationCallback,
    forward_context,
    make_scores,
    update_scores,
)
from lightning_cnn.callbacks.members import expand_checkpoints, load_member_checkpoint
from lightning_cnn.callbacks.multilabel import (
    as_log_probs,
    ensemble_label_values,
    make_label_scores,
    update_label_scores,
)
from lightning_cnn.functional import MERGE_MODES, MergeMode, merge_label_probs, merge_log_probs
from lightning_cnn.tta import ViewName, make_views

__all__ = ["ENSEMBLE_MERGES", "EnsembleEvaluation", "EnsembleMerge"]

EnsembleMerge = Literal["mean", "gmean"]
ENSEMBLE_MERGES: tuple[str, ...] = get_args(EnsembleMerge)


def _same_architecture(members: Sequence[nn.Module]) -> bool:
    first = members[0]
    shapes = {k: (v.shape, v.dtype) for k, v in first.state_dict().items()}
    for m in members[1:]:
        if type(m) is not type(first):
            return False
        if {k: (v.shape, v.dtype) for k, v in m.state_dict().items()} != shapes:
            return False
    return True


class EnsembleEvaluation(EvaluationCallback):
    """Evaluate an ensemble of trained models on the batches the trainer already loads.

    Members come from checkpoint paths, glob patterns or folders of snapshots (``checkpoints``), from
    modules in memory (``members``), and — with ``include_module=True`` — the module under test itself
    (e.g. the one ``lightning-cnn test --ckpt_path a.ckpt`` restored; a checkpoint equal to the trainer's
    ``ckpt_path`` is not loaded twice). Members may be of different classes (see
    :func:`~lightning_cnn.callbacks.members.load_member`). They are moved to the module's device once, kept in
    eval mode, and run in ``on_*_batch_end`` on the batch the trainer already has (so data is loaded and
    normalized once).

    Logged (``{stage}`` is ``val`` or ``test``): ``member{i}_acc`` and ``member{i}_nll`` of each member,
    ``member_mean_acc``, ``member_mean_nll``, the mean-probability ensemble's ``ensemble_acc``,
    ``ensemble_nll`` and ``ensemble_ece``, the majority vote's ``ensemble_vote_acc``, and the accuracy gain
    of the ensemble over the best and the mean member, ``ensemble_gain_vs_best`` and
    ``ensemble_gain_vs_mean``. All are torchmetrics objects owned by the callback, synced across ranks.
    Multi-label members (their task learned from multi-label data) are merged label by label
    (:func:`~lightning_cnn.functional.merge_label_probs`: the mean sigmoid probability, and a majority vote per
    label), and ``member{i}_``, ``ensemble_`` and ``ensemble_vote_`` ``acc``, ``f1``, ``map``, ``exact_match`` and
    ``member_mean_f1`` are logged.
    In predict, the ensemble's probabilities replace a ``[B, num_classes]`` output of ``predict_step`` and
    are kept in :attr:`predictions`.

    When every member has the same class and parameter shapes, a vectorized path runs them as one call
    (``torch.func.stack_module_state`` + ``functional_call`` + ``vmap``; BatchNorm in eval mode works).
    ``vectorize=None`` uses it on CUDA only: on a CPU a plain loop measured as fast or faster.

    Args:
        checkpoints: checkpoint files, glob patterns or folders.
        members: modules in memory.
        include_module: make the running module the first member.
        member_class: class (import path) of the checkpoint members; ``None``: the checkpoint's
            ``_class_path``, else the running module's class.
        merge: how the ensemble's probability is formed: ``"mean"`` (of probabilities) or ``"gmean"``.
        vectorize: use the vectorized path; ``None``: on CUDA when the members share an architecture.
        views: test-time augmentation of every member (see
            :func:`~lightning_cnn.tta.make_views`); the default ``("identity",)`` is none.
        view_merge: how each member's views are merged before the members are.
        stages: loops to run in.
        batch_to_input: a function from a batch to ``(images, labels or None)``.

    Raises:
        ValueError: for an unknown merge mode or stage.

    Example:
        >>> nets = [nn.Sequential(nn.Flatten(), nn.Linear(16, 3)) for _ in range(3)]
        >>> ens = EnsembleEvaluation(members=nets, include_module=False)
        >>> ens.member_logits(torch.randn(2, 1, 4, 4)).shape
        torch.Size([3, 2, 3])
    """

    probability_name = "ensemble"

    def __init__(
        self,
        checkpoints: str | Sequence[str] | None = None,
        members: Sequence[nn.Module] | None = None,
        include_module: bool = True,
        member_class: str | None = None,
        merge: EnsembleMerge = "mean",
        vectorize: bool | None = None,
        views: Sequence[ViewName] = ("identity",),
        view_merge: MergeMode = "mean",
        stages: Sequence[EvalStage] = ("test", "predict"),
        batch_to_input: Callable[[Any], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
    ) -> None:
        super().__init__(stages, batch_to_input)
        check_choice("merge", merge, ENSEMBLE_MERGES)
        check_choice("view_merge", view_merge, MERGE_MODES)
        self.view_names = (views,) if isinstance(views, str) else tuple(views)
        self.views = make_views(self.view_names)
        self.view_merge = view_merge
        self.checkpoints = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints or [])
        self._given = [m.eval() for m in (members or [])]
        self.include_module = include_module
        self.member_class = member_class
        self.merge = merge
        self.vectorize = vectorize
        self._loaded: list[nn.Module] | None = None  # checkpoint members, loaded once
        self._module: nn.Module | None = None  # the running module, when it is a member
        self._stacked: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None
        self.checkpoint_paths: list[str] = []
        self._member_data: list[tuple[str, dict[str, Any]]] = []  # (checkpoint, its DataModule's state)
        if not self.checkpoints and not self._given and not include_module:
            raise ValueError("The ensemble has no members: pass checkpoints, members or include_module=True.")

    @property
    def state_key(self) -> str:
        # Lightning's protected helper for a state key that tells two instances apart (its own callbacks use it).
        return self._generate_state_key(checkpoints=self.checkpoints, include_module=self.include_module)

    @property
    def members(self) -> list[nn.Module]:
        """The members in order: the running module (when included), checkpoints, modules in memory."""
        own = [self._module] if self._module is not None else []
        return own + (self._loaded or []) + self._given

    # ------------------------------------------------------------------ members
    def _prepare(self, trainer: Trainer | None, module: nn.Module | None, stage: str | None = None) -> None:
        """Load checkpoint members once; move every member to the module's device; stack for vmap."""
        if self._loaded is None:
            paths = expand_checkpoints(self.checkpoints) if self.checkpoints else []
            running = getattr(trainer, "ckpt_path", None) if trainer is not None else None
            if self.include_module and running:
                paths = [p for p in paths if not _same_file(p, running)]
            self.checkpoint_paths = paths
            fallback = type(module) if module is not None else None
            self._loaded, self._member_data = [], []
            for p in paths:
                member, rest = load_member_checkpoint(p, self.member_class, fallback)
                self._loaded.append(member)
                self._member_data.append((p, rest))
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if isinstance(datamodule, ChecksCheckpointData):
            for p, rest in self._member_data:  # checked for each stage: each evaluates another set
                datamodule.check_checkpoint(rest, p, stage)
        self._module = module if self.include_module else None
        device = _device_of(module) if module is not None else torch.device("cpu")
        # The running module's floating dtype: under a "*-true" precision the batches come in that dtype.
        own = module.parameters() if module is not None else iter(())
        dtype = next((q.dtype for q in own if q.is_floating_point()), None)
        for m in (self._loaded or []) + self._given:
            m.to(device=device, dtype=dtype).eval()
        self._stacked = None
        if self._use_vmap(device):
            params, buffers = stack_module_state(self.members)  # type: ignore[arg-type]
            self._stacked = (params, buffers)

    def _use_vmap(self, device: torch.device) -> bool:
        members = self.members
        if len(members) < 2:
            return False
        wanted = device.type == "cuda" if self.vectorize is None else self.vectorize
        if not wanted:
            return False
        same = _same_architecture(members)
        if self.vectorize and not same:
            raise ValueError("vectorize=True needs members of one class with equal parameter shapes.")
        return same

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every member for images ``[B, C, H, W]``, stacked as ``[M, B, C]``."""
        if self._loaded is None:
            self._prepare(None, None)
        members = self.members
        if not members:
            raise RuntimeError("The ensemble has no members yet: it loads them when a loop starts.")
        with torch.no_grad():
            if self._stacked is not None:
                params, buffers = self._stacked
                base = members[0]

                def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], inp: torch.Tensor) -> torch.Tensor:
                    return functional_call(base, (p, b), (inp,))

                return torch.vmap(call, in_dims=(0, 0, None))(params, buffers, x)
            logits = [self.forward(m, x) for m in members]
        widths = [int(z.shape[-1]) for z in logits]
        if len(set(widths)) > 1:
            raise ValueError(
                f"Ensemble members give different numbers of classes: {widths} (in order: the module under test when"
                f" included, the checkpoints {self.checkpoint_paths}, then the modules in memory)."
            )
        return torch.stack(logits)

    # ------------------------------------------------------------------ hooks
    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if "val" in self.stages:
            self._prepare(trainer, pl_module, "val")

    @override
    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if "test" in self.stages:
            self._prepare(trainer, pl_module, "test")

    @override
    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if "predict" in self.stages:
            self._prepare(trainer, pl_module, "predict")

    def _streams(
        self, stage: str, m: int, num_classes: int, device: torch.device, multilabel: bool = False
    ) -> dict[str, MetricCollection]:
        streams = self._scores.get(stage)
        if streams is None or len(streams) != m + 2:
            if multilabel:
                streams = {f"member{i}": make_label_scores(num_classes) for i in range(m)}
                streams |= {"ensemble": make_label_scores(num_classes), "ensemble_vote": make_label_scores(num_classes)}
            else:
                streams = {f"member{i}": make_scores(num_classes, ece=False) for i in range(m)}
                streams["ensemble"] = make_scores(num_classes)
                streams["ensemble_vote"] = make_scores(num_classes, ece=False)
            self._scores[stage] = streams
        for s in streams.values():
            s.to(device)
        return streams

    @override
    def evaluate_batch(
        self, trainer: Trainer, module: LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> torch.Tensor:
        x, y = self.batch_to_input(batch)
        if is_multilabel(self.members[0] if self.members else module):
            return self._evaluate_labels(trainer, x, y, stage)
        with forward_context(trainer):
            if len(self.views) == 1 and self.views[0].name == "identity":
                logits = self.member_logits(x).float()
            else:  # [K, M, B, C] -> per member, merge its K views: log-probabilities [M, B, C]
                per_view = torch.stack([self.member_logits(view(x)).float() for view in self.views])
                logits = torch.stack([merge_log_probs(v, self.view_merge) for v in per_view.unbind(1)])
        merged = merge_log_probs(logits, self.merge)
        if y is not None and stage != "predict":
            labels = class_indices(y)
            streams = self._streams(stage, logits.shape[0], logits.shape[-1], logits.device)
            for i, member in enumerate(logits):
                update_scores(streams[f"member{i}"], member.log_softmax(-1), labels)
            update_scores(streams["ensemble"], merged, labels)
            update_scores(streams["ensemble_vote"], merge_log_probs(logits, "vote"), labels)
        return merged

    def _evaluate_labels(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor | None, stage: str) -> torch.Tensor:
        """A multi-label batch: each member's views merged label by label, then the members (mean and vote)."""
        with forward_context(trainer):
            if len(self.views) == 1 and self.views[0].name == "identity":
                logits = self.member_logits(x).float()
            else:  # [K, M, B, L] -> per member, its views' merged probabilities, back as logits [M, B, L]
                per_view = torch.stack([self.member_logits(view(x)).float() for view in self.views])
                probs = torch.stack([merge_label_probs(v, self.view_merge) for v in per_view.unbind(1)])
                logits = torch.logit(probs, eps=1e-6)
        merged = merge_label_probs(logits, self.merge)
        if y is not None and stage != "predict":
            streams = self._streams(stage, logits.shape[0], logits.shape[-1], logits.device, multilabel=True)
            for i, member in enumerate(logits):
                update_label_scores(streams[f"member{i}"], member.sigmoid(), y)
            update_label_scores(streams["ensemble"], merged, y)
            update_label_scores(streams["ensemble_vote"], merge_label_probs(logits, "vote"), y)
        return as_log_probs(merged)

    @override
    def log_epoch(self, module: LightningModule, stage: str) -> None:
        streams = self._scores[stage]
        if "map" in next(iter(streams.values())):  # multi-label streams
            self.log_values(module, stage, ensemble_label_values(streams))
            for scores in streams.values():
                scores.reset()
            return
        values: dict[str, torch.Tensor] = {}
        member_acc, member_nll = [], []
        for name, scores in streams.items():
            result = scores.compute()
            if name == "ensemble_vote":
                values["ensemble_vote_acc"] = result["acc"]
                continue
            for metric, value in result.items():
                values[f"{name}_{metric}"] = value
            if name.startswith("member"):
                member_acc.append(result["acc"])
                member_nll.append(result["nll"])
        accs, nlls = torch.stack(member_acc), torch.stack(member_nll)
        values["member_mean_acc"] = accs.mean()
        values["member_mean_nll"] = nlls.mean()
        values["ensemble_gain_vs_best"] = values["ensemble_acc"] - accs.max()
        values["ensemble_gain_vs_mean"] = values["ensemble_acc"] - accs.mean()
        self.log_values(module, stage, values)
        for scores in streams.values():
            scores.reset()

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Do not hold the running module (or its stacked copy) after the loop.
        self._module = None
        self._stacked = None


def _device_of(module: nn.Module) -> torch.device:
    device = getattr(module, "device", None)
    if isinstance(device, torch.device):
        return device
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
