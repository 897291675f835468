"""TransferClassifier: a timm backbone, frozen or partly fine-tuned, with a linear classifier from any stage."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import timm
import torch
from lightning.fabric.utilities.types import _MAP_LOCATION_TYPE, _PATH
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import _restricted_classmethod
from timm.models import group_parameters
from timm.models._manipulate import adapt_input_conv
from torch import nn
from typing_extensions import Self

from lightning_cnn._utils.restore import restoring_weights, skipped_loads
from lightning_cnn._utils.validation import check_choice, check_positive, check_probability
from lightning_cnn.models.base import ClassifierModule

__all__ = ["FinetuneName", "TransferClassifier", "load_weights", "resolve_backbone"]

FinetuneName = Literal["linear", "partial", "full", "gradual"]
_FINETUNE = ("linear", "partial", "full", "gradual")
_MAPPINGS = ("names", "order")


def resolve_backbone(name: str) -> str:
    """Return ``name`` when timm knows it; otherwise raise with the closest names.

    Example:
        >>> resolve_backbone("resnet18")
        'resnet18'
        >>> resolve_backbone("resnet181")
        Traceback (most recent call last):
        ...
        ValueError: Unknown timm backbone 'resnet181'. Did you mean 'resnet18', 'resnet18d' or 'resnet101'? ...
    """
    known = timm.list_models()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close[:-1])} or {close[-1]!r}?" if len(close) > 1 else ""
    if len(close) == 1:
        hint = f" Did you mean {close[0]!r}?"
    raise ValueError(
        f"Unknown timm backbone {name!r}.{hint} All {len(known)} names: timm.list_models(), or a pattern such as"
        " timm.list_models('efficientnet*')."
    )


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"weights={str(path)!r} does not exist or is not a file.")
    obj = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # a Lightning checkpoint
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights={str(path)!r} holds neither a state dict nor a Lightning checkpoint.")
    sd = dict(obj)
    for prefix in ("backbone.", "model.", "net."):
        inner = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if inner:  # a checkpoint of a module that wraps the network (ours: "backbone.")
            return inner
    return sd


def _adapt_first_conv(model: nn.Module, key: str, tensor: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Adapt pretrained RGB input-conv weights to another channel count, as timm does."""
    if (
        tensor.ndim == 4
        and target.ndim == 4
        and tensor.shape[0] == target.shape[0]
        and tensor.shape[2:] == target.shape[2:]
    ):
        first = getattr(model, "pretrained_cfg", {}).get("first_conv")
        if first and key.startswith(str(first)) and tensor.shape[1] != target.shape[1]:
            return adapt_input_conv(target.shape[1], tensor)
    return None


def load_weights(
    model: nn.Module, path: str | Path, mapping: Literal["names", "order"] = "names"
) -> dict[str, list[str]]:
    """Load a state dict or Lightning checkpoint into a timm ``model`` and report what matched.

    ``mapping="names"`` matches keys by name. ``mapping="order"`` maps a foreign key layout (another library's
    names for the same network) onto the model key by key, in order: the two must hold the same number of
    tensors, and every pair must agree in shape, or the load is refused naming the first mismatch. In both
    modes, classifier tensors whose shape differs (another class count) are skipped and reported, and a first
    convolution with another input-channel count is adapted as timm adapts pretrained weights.

    Args:
        model: the timm model to load into.
        path: a ``.pth``/``.pt`` state dict or a Lightning ``.ckpt``.
        mapping: ``"names"`` or ``"order"``.

    Returns:
        ``{"missing": [...], "unexpected": [...], "skipped": [...]}`` key lists.

    Raises:
        FileNotFoundError: when ``path`` is no file.
        ValueError: for a file without tensors, or a shape mismatch outside the classifier.
    """
    check_choice("weights_mapping", mapping, _MAPPINGS)
    source = _read_state_dict(path)
    target = model.state_dict()
    classifier = str(getattr(model, "pretrained_cfg", {}).get("classifier", ""))
    skipped: list[str] = []
    if mapping == "order":
        if len(source) != len(target):
            raise ValueError(
                f"weights_mapping='order' needs the same number of tensors, but {str(path)!r} has {len(source)} and"
                f" the model has {len(target)}."
            )
        pairs = list(zip(source.items(), target.items(), strict=True))
    else:
        pairs = [((k, v), (k, target[k])) for k, v in source.items() if k in target]
    loaded: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, dst) in pairs:
        if tensor.shape == dst.shape:
            loaded[dst_key] = tensor
            continue
        adapted = _adapt_first_conv(model, dst_key, tensor, dst)
        if adapted is not None:
            loaded[dst_key] = adapted
        elif classifier and dst_key.startswith(classifier):
            skipped.append(dst_key)
        else:
            raise ValueError(
                f"Shape mismatch loading {str(path)!r}: {src_key!r} has shape {tuple(tensor.shape)} but the model's"
                f" {dst_key!r} has {tuple(dst.shape)}."
            )
    result = model.load_state_dict(loaded, strict=False)
    unexpected = [k for k in source if k not in target] if mapping == "names" else []
    missing = [k for k in result.missing_keys if k not in skipped]
    report = {"missing": missing, "unexpected": unexpected, "skipped": skipped}

    def show(keys: list[str]) -> str:
        return "none" if not keys else f"{len(keys)} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"

    rank_zero_info(
        f"Loaded {len(loaded)} of {len(target)} tensors from {path} (weights_mapping={mapping!r}); missing:"
        f" {show(missing)}; unexpected: {show(unexpected)}; skipped for their shape: {show(skipped)}."
    )
    return report


class TransferClassifier(ClassifierModule):
    """A timm backbone with a linear classifier, trained as a linear probe or fine-tuned.

    The lecture's table, one setting each: little data like ImageNet, ``finetune="linear"``; much data,
    ``"partial"`` (the last ``trainable_stages`` stages) or ``"full"``; data unlike ImageNet, a linear probe
    from an earlier stage (``probe_stage``, see :func:`stage_sweep`). ``"gradual"`` unfreezes one more stage
    (from the top) at each epoch in ``unfreeze_epochs``; frozen stages keep ``requires_grad`` on and have
    their gradients dropped before each step, so DDP, which registers parameters once, reduces them all.

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
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        weights_mapping: Literal["names", "order"] = "names",
        finetune: FinetuneName = "linear",
        trainable_stages: int = 1,
        unfreeze_epochs: list[int] | None = None,
        backbone_lr_scale: float = 0.1,
        probe_stage: int | None = None,
        cache_features: bool = False,
        head_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        skip = skipped_loads()
        super().__init__(num_classes=num_classes, **kwargs)
        resolve_backbone(backbone)
        check_choice("finetune", finetune, _FINETUNE)
        check_choice("weights_mapping", weights_mapping, _MAPPINGS)
        check_positive("in_channels", in_channels)
        check_positive("trainable_stages", trainable_stages)
        check_positive("backbone_lr_scale", backbone_lr_scale, allow_zero=True)
        check_probability("head_dropout", head_dropout)
        if cache_features and finetune != "linear":
            raise ValueError(f"cache_features=True needs finetune='linear' (a frozen backbone), but got {finetune!r}.")
        if probe_stage is not None and finetune != "linear":
            raise ValueError(f"probe_stage needs finetune='linear' (a frozen backbone), but got {finetune!r}.")
        self.backbone: Any = self._create(backbone, pretrained and "pretrained" not in skip, num_classes, in_channels)
        if weights is not None and "weights" not in skip:
            self.weights_report = load_weights(self.backbone, weights, weights_mapping)
        n_stages = len(self.backbone.feature_info)
        if probe_stage is not None:
            if not 0 <= probe_stage < n_stages:
                raise ValueError(
                    f"Expected probe_stage to be in [0, {n_stages - 1}] for {backbone!r}, but got {probe_stage!r}."
                )
            channels = self.backbone.feature_info[probe_stage]["num_chs"]
            self.backbone.prune_intermediate_layers([probe_stage], prune_head=True)
            self.probe_head: nn.Module | None = nn.Linear(channels, num_classes)
        else:
            self.probe_head = None
        self.dropout = nn.Dropout(head_dropout) if head_dropout > 0 else nn.Identity()
        self._stages = self._stage_parameters()
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
        self._cache: dict[bytes, torch.Tensor] = {}
        self._last: tuple[torch.Tensor, int, torch.Tensor] | None = None

    # ------------------------------------------------------------------ construction
    @_restricted_classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: _PATH | IO,
        map_location: _MAP_LOCATION_TYPE = None,
        hparams_file: _PATH | None = None,
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

    @staticmethod
    def _create(name: str, pretrained: bool, num_classes: int, in_channels: int) -> Any:
        try:
            return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels)
        except Exception as err:
            if not pretrained:
                raise
            raise RuntimeError(
                f"Could not fetch pretrained weights for {name!r} ({type(err).__name__}: {err}). Without network"
                " access, pass weights=PATH to a local state dict or checkpoint instead."
            ) from err

    def _stage_parameters(self) -> list[list[nn.Parameter]]:
        """Backbone parameters grouped by stage, from the stem to the last stage (the classifier excluded)."""
        named = dict(self.backbone.named_parameters())
        head_ids = {id(p) for p in self.head.parameters()}
        groups = group_parameters(self.backbone, self.backbone.group_matcher(coarse=True))
        stages = [[named[n] for n in names if id(named[n]) not in head_ids] for _, names in sorted(groups.items())]
        return [s for s in stages if s]

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen_backbone:
            with torch.no_grad():
                cache = self.hparams["cache_features"]
                feats = self._cached_features(x) if cache else None
                if feats is None:
                    feats = self.features(x)
                    if cache:
                        self._store(x, feats)
        else:
            feats = self.features(x)
        return self.head(self.dropout(feats))

    # ------------------------------------------------------------------ feature cache
    @staticmethod
    def _keys(x: torch.Tensor) -> list[bytes]:
        rows = x.detach().flatten(1).cpu().contiguous().numpy()
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    def _cached_features(self, x: torch.Tensor) -> torch.Tensor | None:
        # LBFGS calls the closure many times on one unchanged batch: look it up once.
        memo = not x.is_inference()  # inference tensors keep no version counter (and are not reused by LBFGS)
        if memo and self._last is not None and self._last[0] is x and self._last[1] == x._version:
            return self._last[2]
        keys = self._keys(x)
        if not all(k in self._cache for k in keys):
            return None
        feats = torch.stack([self._cache[k] for k in keys]).to(x.device)
        if memo:
            self._last = (x, x._version, feats)  # holding x keeps its identity unique
        return feats

    def _store(self, x: torch.Tensor, feats: torch.Tensor) -> None:
        for key, f in zip(self._keys(x), feats, strict=True):
            self._cache[key] = f.detach()

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

        The scheduler is built afterwards from these groups, so the backbone keeps that fraction of the head's
        learning rate at every step.
        """
        optimizer = super().create_optimizer()
        scale = self.hparams["backbone_lr_scale"]
        if scale != 1.0 and not self.frozen_backbone:
            if self.hparams["optimizer"] in ("lbfgs", "muon"):
                raise ValueError(
                    f"backbone_lr_scale={scale} needs parameter groups, which optimizer="
                    f"{self.hparams['optimizer']!r} does not take here; set backbone_lr_scale=1.0."
                )
            head_ids = {id(p) for p in self.head.parameters()} | {id(p) for p in self.dropout.parameters()}
            new_groups = []
            for group in optimizer.param_groups:
                backbone_params = [p for p in group["params"] if id(p) not in head_ids]
                head_params = [p for p in group["params"] if id(p) in head_ids]
                group["params"] = head_params
                if backbone_params:
                    new_groups.append({**group, "params": backbone_params, "lr": group["lr"] * scale})
            optimizer.param_groups = [g for g in optimizer.param_groups if g["params"]]
            for g in new_groups:
                optimizer.add_param_group(g)
        return optimizer

    @property
    def data_config(self) -> dict[str, Any]:
        """The backbone's preprocessing from timm: ``mean``, ``std``, ``input_size``, ``interpolation``."""
        return dict(timm.data.resolve_data_config({}, model=self.backbone))


def stage_sweep(
    datamodule: Any,
    backbone: str,
    weights: str | None = None,
    weights_mapping: Literal["names", "order"] = "names",
    stages: Sequence[int] | None = None,
    max_epochs: int = 10,
    lr: float = 1e-2,
    seed: int = 0,
    default_root_dir: str | Path | None = None,
) -> list[dict[str, float]]:
    """Train a linear probe on every stage of a frozen backbone and report validation accuracy per stage.

    Each probe caches its features after the first epoch, so the sweep costs about one backbone pass over the
    data per stage.

    Args:
        datamodule: a DataModule with ``num_classes`` and ``in_channels``.
        backbone: timm model name.
        weights: local weights for the backbone.
        weights_mapping: ``"names"`` or ``"order"``.
        stages: stages to probe (default: all).
        max_epochs: epochs of each probe.
        lr: learning rate of the probes.
        seed: seed of each probe's initialization.
        default_root_dir: folder of the probes' Trainers, where the DataModule writes ``splits.json``
            (default: the working directory, as for any Lightning Trainer).

    Returns:
        One ``{"stage", "channels", "val_acc"}`` row per stage.
    """
    import lightning.pytorch as pl

    probe = TransferClassifier(
        num_classes=datamodule.num_classes, in_channels=datamodule.in_channels, backbone=backbone
    )
    all_stages = range(len(probe.backbone.feature_info))
    rows: list[dict[str, float]] = []
    for stage in stages if stages is not None else all_stages:
        pl.seed_everything(seed, verbose=False)
        model = TransferClassifier(
            num_classes=datamodule.num_classes,
            in_channels=datamodule.in_channels,
            backbone=backbone,
            weights=weights,
            weights_mapping=weights_mapping,
            probe_stage=stage,
            cache_features=True,
            lr=lr,
        )
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator="auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=default_root_dir,
        )
        trainer.fit(model, datamodule)
        acc = trainer.validate(model, datamodule, verbose=False)[0]["val/acc"]
        rows.append({"stage": stage, "channels": model.backbone.feature_info[stage]["num_chs"], "val_acc": float(acc)})
    return rows
