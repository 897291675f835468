"""TransferClassifier: a timm backbone, frozen or partly fine-tuned, with a linear classifier from any stage."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Literal, get_args

import torch

# Lightning's own LightningModule.load_from_checkpoint is wrapped in this private decorator, which refuses a
# call on an instance (that call would build a new model and drop it); Lightning offers no public equivalent,
# and a plain classmethod would accept that call.
from lightning.pytorch.utilities.model_helpers import _restricted_classmethod
from torch import nn
from typing_extensions import Self

from lightning_cnn._utils.restore import restoring_weights, skipped_loads
from lightning_cnn._utils.validation import check_choice, check_positive, check_probability, check_range
from lightning_cnn.models.backbones import create_backbone, resolve_backbone, stage_parameters
from lightning_cnn.models.base import ClassifierModule
from lightning_cnn.models.cache import FeatureCache
from lightning_cnn.models.weights import MIN_MATCHED_SHARE, WEIGHTS_MAPPING_NAMES, WeightsMappingName, load_weights
from lightning_cnn.optim import layer_decay_scales, scale_param_groups

__all__ = ["FINETUNE_NAMES", "FinetuneName", "TransferClassifier"]

FinetuneName = Literal["linear", "partial", "full", "gradual"]
FINETUNE_NAMES: tuple[str, ...] = get_args(FinetuneName)


class TransferClassifier(ClassifierModule):
    """A timm backbone with a linear classifier, trained as a linear probe or fine-tuned.

    The lecture's table, one setting each: little data like ImageNet, ``finetune="linear"``; much data,
    ``"partial"`` (the last ``trainable_stages`` stages) or ``"full"``; data unlike ImageNet, a linear probe
    from an earlier stage (``probe_stage``, see :func:`~lightning_cnn.recipes.stage_sweep`). ``"gradual"``
    unfreezes one more stage (from the top) at each epoch in ``unfreeze_epochs``; frozen stages keep
    ``requires_grad`` on and have their gradients dropped before each step, so DDP, which registers parameters
    once, reduces them all.

    Frozen stages keep their BatchNorm layers in evaluation mode, so running statistics never move. With
    ``finetune="linear"`` the backbone runs without autograd, and ``cache_features=True`` keeps each image's
    features after their first computation, so later epochs cost only the head. The cache keys on the exact
    image content: with random augmentation every view is new, so caching helps only without it.

    Args:
        num_classes: number of classes.
        in_channels: image channels (timm adapts the first convolution, as for pretrained weights).
        backbone: a timm model name (``timm.list_models()``).
        pretrained: download timm's pretrained weights (needs network access).
        weights: a local state dict or Lightning checkpoint to load into the backbone.
        weights_mapping: ``"names"`` or ``"order"`` (see :func:`load_weights`).
        finetune: ``"linear"``, ``"partial"``, ``"full"`` or ``"gradual"``.
        trainable_stages: stages trained by ``"partial"`` (counted from the top).
        unfreeze_epochs: epochs at which ``"gradual"`` unfreezes the next stage.
        backbone_lr_scale: the backbone's learning rate as a fraction of the head's.
        layer_decay: layer-wise learning-rate decay over the backbone's stages: the last stage runs at
            ``backbone_lr_scale * layer_decay`` times the head's rate, each earlier one ``layer_decay`` times the next
            (:func:`~lightning_cnn.optim.layer_decay_scales`); ``None``: every stage at ``backbone_lr_scale``.
        probe_stage: put the classifier on the pooled output of this stage (index into the backbone's
            ``feature_info``); ``None``: the final features.
        cache_features: cache the frozen backbone's features of each image seen (linear probes only).
        head_dropout: dropout before the classifier.
        kwargs: loss, optimizer, scheduler and metric options of :class:`ClassifierModule`.

    Raises:
        ValueError: for an unknown backbone (with close matches), strategy or out-of-range stage.

    Example:
        >>> model = TransferClassifier(num_classes=3, backbone="resnet10t", in_channels=1, finetune="linear")
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 3])
        >>> model.frozen_backbone
        True
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        weights_mapping: WeightsMappingName = "names",
        finetune: FinetuneName = "linear",
        trainable_stages: int = 1,
        unfreeze_epochs: list[int] | None = None,
        backbone_lr_scale: float = 0.1,
        layer_decay: float | None = None,
        probe_stage: int | None = None,
        cache_features: bool = False,
        head_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        skip = skipped_loads()
        super().__init__(num_classes=num_classes, **kwargs)
        resolve_backbone(backbone)
        check_choice("finetune", finetune, FINETUNE_NAMES)
        check_choice("weights_mapping", weights_mapping, WEIGHTS_MAPPING_NAMES)
        check_positive("in_channels", in_channels)
        check_positive("trainable_stages", trainable_stages)
        check_positive("backbone_lr_scale", backbone_lr_scale, allow_zero=True)
        check_probability("head_dropout", head_dropout)
        if layer_decay is not None:
            check_range("layer_decay", layer_decay, 0, 1, include_low=False)
            if finetune == "linear":
                raise ValueError(
                    f"layer_decay={layer_decay!r} needs a fine-tuned backbone (finetune='partial', 'full' or"
                    " 'gradual'), but got finetune='linear'."
                )
        if cache_features and finetune != "linear":
            raise ValueError(f"cache_features=True needs finetune='linear' (a frozen backbone), but got {finetune!r}.")
        if probe_stage is not None and finetune != "linear":
            raise ValueError(f"probe_stage needs finetune='linear' (a frozen backbone), but got {finetune!r}.")
        self.backbone: Any = create_backbone(
            backbone, pretrained and "pretrained" not in skip, num_classes, in_channels
        )
        if weights is not None and "weights" not in skip:
            self.weights_report = load_weights(self.backbone, weights, weights_mapping, min_share=MIN_MATCHED_SHARE)
        n_stages = len(self.backbone.feature_info)
        if probe_stage is not None:
            check_range("probe_stage", probe_stage, 0, n_stages - 1, where=f" for {backbone!r}")
            channels = self.backbone.feature_info[probe_stage]["num_chs"]
            self.backbone.prune_intermediate_layers([probe_stage], prune_head=True)
            self.probe_head: nn.Module | None = nn.Linear(channels, num_classes)
        else:
            self.probe_head = None
        self.dropout = nn.Dropout(head_dropout) if head_dropout > 0 else nn.Identity()
        self._stages = stage_parameters(self.backbone, self.head)
        if finetune == "gradual":
            epochs = list(unfreeze_epochs or [])
            if sorted(epochs) != epochs or any(e < 0 for e in epochs):
                raise ValueError(f"Expected unfreeze_epochs to be increasing epochs >= 0, but got {unfreeze_epochs!r}.")
            if len(epochs) > len(self._stages):
                raise ValueError(
                    f"unfreeze_epochs has {len(epochs)} entries but {backbone!r} has {len(self._stages)} stages."
                )
        elif finetune == "partial" and trainable_stages > len(self._stages):
            raise ValueError(
                f"Expected trainable_stages to be at most {len(self._stages)} for {backbone!r}, but got"
                f" {trainable_stages}."
            )
        self._frozen: set[int] = set()  # indices into self._stages
        self._apply_static_freezing()
        self._cache = FeatureCache()

    # ------------------------------------------------------------------ construction
    @_restricted_classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Rebuild a model from a Lightning checkpoint, without the weights file or the network it was built with.

        As :meth:`lightning.pytorch.LightningModule.load_from_checkpoint`, but the saved ``weights`` file is
        not read and the ``pretrained`` weights are not downloaded: the checkpoint's state dict replaces every
        tensor anyway. The saved hyperparameters keep their values. Passing ``weights`` or ``pretrained`` here
        loads them as in the constructor.

        Args:
            checkpoint_path: the checkpoint (a path, URL or file-like object).
            map_location: where to load the tensors, as in :func:`torch.load`.
            hparams_file: a ``.yaml`` or ``.csv`` file of hyperparameters, for a checkpoint without them.
            strict: whether the checkpoint's keys must match the model's exactly.
            weights_only: load with ``torch.load(weights_only=...)``.
            kwargs: constructor arguments that override the saved ones.

        Example:
            >>> import os, tempfile
            >>> import lightning.pytorch as pl
            >>> import timm
            >>> weights = f"{tempfile.mkdtemp()}/weights.pth"
            >>> torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), weights)
            >>> model = TransferClassifier(num_classes=3, backbone="test_resnet", weights=weights)
            >>> ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
            >>> torch.save({**ckpt, "pytorch-lightning_version": pl.__version__}, f"{weights}.ckpt")
            >>> os.remove(weights)  # the checkpoint holds every tensor: the file is no longer needed
            >>> TransferClassifier.load_from_checkpoint(f"{weights}.ckpt").hparams["weights"] == weights
            True
        """
        with restoring_weights(keep=kwargs):
            return super().load_from_checkpoint(
                checkpoint_path,
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )

    def _apply_static_freezing(self) -> None:
        finetune = self.hparams["finetune"]
        n = len(self._stages)
        if finetune == "linear":
            frozen = set(range(n))
        elif finetune == "partial":
            frozen = set(range(n - self.hparams["trainable_stages"]))
        elif finetune == "gradual":
            frozen = set(range(n))
        else:
            frozen = set()
        self._frozen = frozen
        if finetune in ("linear", "partial"):
            for i, params in enumerate(self._stages):
                for p in params:
                    p.requires_grad_(i not in frozen)
        self._set_frozen_eval()

    def _frozen_params(self) -> set[int]:
        return {id(p) for i in self._frozen for p in self._stages[i]}

    def _set_frozen_eval(self) -> None:
        """Frozen normalization layers go to eval mode, so their running statistics never move.

        The others follow the module's mode: a stage that ``"gradual"`` unfreezes goes back to train mode, as
        Lightning restores each layer's own mode after validation and would otherwise keep it in eval mode.
        """
        frozen = self._frozen_params()
        for module in self.backbone.modules():
            own = list(module.parameters(recurse=False))
            # Private: torch's one base class of every BatchNorm (1d/2d/3d, Sync, Lazy, timm's subclasses).
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and own:
                module.train(self.training and not all(id(p) in frozen for p in own))

    def train(self, mode: bool = True) -> TransferClassifier:
        super().train(mode)
        if mode and self.hparams["finetune"] == "linear":
            self.backbone.eval()  # a frozen backbone is a fixed feature extractor: no BN or dropout updates
            self.head.train()
        elif mode:
            self._set_frozen_eval()
        return self

    # ------------------------------------------------------------------ forward
    @property
    def head(self) -> nn.Module:
        """The linear classifier: the probe's, or the backbone's own (so pretrained heads load with it)."""
        return self.probe_head if self.probe_head is not None else self.backbone.get_classifier()

    @property
    def frozen_backbone(self) -> bool:
        """Whether no backbone parameter trains (a linear probe)."""
        return self.hparams["finetune"] == "linear"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``[B, D]`` of the chosen stage."""
        stage = self.hparams["probe_stage"]
        if stage is None:
            return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        out = self.backbone.forward_intermediates(x, indices=[stage], intermediates_only=True, stop_early=True)[0]
        return out.mean(dim=(2, 3))

    normalizes_inputs = True  # forward below normalizes raw images first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize_inputs(x)
        if self.frozen_backbone:
            with torch.no_grad():
                cache = self.hparams["cache_features"]
                feats = self._cached_features(x) if cache else None
                if feats is None:
                    feats = self.features(x)
                    if cache:
                        self._cache.store(x, feats)
        else:
            feats = self.features(x)
        return self.head(self.dropout(feats))

    def _cached_features(self, x: torch.Tensor) -> torch.Tensor | None:
        return self._cache.lookup(x)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._cache.begin_step()  # LBFGS evaluates its closure several times on one batch: hash it once

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._cache.end_step()

    # ------------------------------------------------------------------ gradual unfreezing
    def on_train_epoch_start(self) -> None:
        if self.hparams["finetune"] != "gradual":
            return
        n = len(self._stages)
        opened = sum(1 for e in self.hparams["unfreeze_epochs"] or [] if e <= self.current_epoch)
        self._frozen = set(range(n - opened))
        self._set_frozen_eval()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.hparams["finetune"] == "gradual" and self._frozen:
            frozen = self._frozen_params()
            for p in self.backbone.parameters():
                if id(p) in frozen:
                    p.grad = None

    # ------------------------------------------------------------------ optimizer
    def create_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer, with the backbone's parameters in groups of their own at ``backbone_lr_scale`` times the lr.

        With ``layer_decay``, each stage has its own groups, the last at ``backbone_lr_scale * layer_decay`` times
        the head's rate and each earlier one ``layer_decay`` times the next. Every group keeps its weight decay
        (none on norms and biases). The scheduler is built afterwards from these groups, so each keeps its fraction
        of the head's learning rate at every step; a stage that ``"gradual"`` unfreezes trains at its own rate.
        """
        optimizer = super().create_optimizer()
        hp = self.hparams
        scale, decay = hp["backbone_lr_scale"], hp.get("layer_decay")
        if (scale != 1.0 or decay is not None) and not self.frozen_backbone:
            if hp["optimizer"] in ("lbfgs", "muon"):
                what = f"backbone_lr_scale={scale}" + (f" and layer_decay={decay}" if decay is not None else "")
                raise ValueError(
                    f"{what} need parameter groups, which optimizer={hp['optimizer']!r} does not take here; set"
                    " backbone_lr_scale=1.0 and layer_decay=None."
                )
            factors = layer_decay_scales(len(self._stages), decay) if decay is not None else [1.0] * len(self._stages)
            scales = {id(p): scale for p in self.backbone.parameters()}
            scales.update({id(p): scale * f for stage, f in zip(self._stages, factors, strict=True) for p in stage})
            for p in [*self.head.parameters(), *self.dropout.parameters()]:
                scales.pop(id(p), None)
            scale_param_groups(optimizer, scales)
        return optimizer

    @property
    def data_config(self) -> dict[str, Any]:
        """The backbone's preprocessing from timm: ``mean``, ``std``, ``input_size``, ``interpolation``."""
        from timm.data import resolve_data_config

        return dict(resolve_data_config({}, model=self.backbone))
