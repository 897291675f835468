"""Test-time augmentation: predict on several views of each batch (or with dropout on) and merge them."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, get_args

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError
from typing_extensions import override

from lightning_cnn._utils.validation import check_choice, check_positive
from lightning_cnn.augment import build_augmentation
from lightning_cnn.functional import MERGE_MODES, MergeMode, merge_log_probs

__all__ = ["VIEW_NAMES", "TestTimeAugmentation", "View", "ViewName", "make_views"]

ViewName = Literal[
    "identity",
    "hflip",
    "vflip",
    "rot90",
    "rot180",
    "rot270",
    "transpose",
    "anti_transpose",
    "shift_left",
    "shift_right",
    "shift_up",
    "shift_down",
    "zoom_in",
    "zoom_out",
    "five_crop",
    "ten_crop",
    "flips",
    "d4",
    "shifts",
]
VIEW_NAMES: tuple[str, ...] = get_args(ViewName)
# Names that stand for several views.
_PRESETS: dict[str, tuple[str, ...]] = {
    "flips": ("identity", "hflip", "vflip"),
    "d4": ("identity", "rot90", "rot180", "rot270", "hflip", "vflip", "transpose", "anti_transpose"),
    "shifts": ("identity", "shift_left", "shift_right", "shift_up", "shift_down"),
}
_STAGES = ("val", "test", "predict")
Stage = Literal["val", "test", "predict"]


@dataclass(frozen=True)
class View:
    """One deterministic view of a batch ``[B, C, H, W]``, with its inverse where one exists.

    Flips, 90-degree rotations and transposes are exactly invertible; shifts, zooms and crops drop
    pixels, so their ``inverse_fn`` is ``None``.

    Example:
        >>> view = make_views(["rot90"])[0]
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> torch.equal(view.inverse(view(x)), x)
        True
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    inverse_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    @property
    def invertible(self) -> bool:
        return self.inverse_fn is not None

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Map a view back to the original orientation (for dense outputs such as masks)."""
        if self.inverse_fn is None:
            raise NotImplementedError(f"The view {self.name!r} drops pixels, so it has no inverse.")
        return self.inverse_fn(x)


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift content by ``(dy, dx)`` pixels, filling with zeros (the mean, once normalized)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _crop_size(length: int, fraction: float) -> int:
    return min(length, max(1, round(length * fraction)))


def _zoom_in(x: torch.Tensor, fraction: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = _crop_size(h, fraction), _crop_size(w, fraction)
    top, left = (h - ch) // 2, (w - cw) // 2
    return _resize(x[..., top : top + ch, left : left + cw], (h, w))


def _zoom_out(x: torch.Tensor, fraction: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = _crop_size(h, fraction), _crop_size(w, fraction)
    small = _resize(x, (sh, sw))
    top, left = (h - sh) // 2, (w - sw) // 2
    return F.pad(small, (left, w - sw - left, top, h - sh - top))


def _crop(x: torch.Tensor, corner: str, fraction: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = _crop_size(h, fraction), _crop_size(w, fraction)
    top = {"t": 0, "b": h - ch, "c": (h - ch) // 2}[corner[0]]
    left = {"l": 0, "r": w - cw, "c": (w - cw) // 2}[corner[1]]
    return _resize(x[..., top : top + ch, left : left + cw], (h, w))


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _rotate(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(x, k, dims=(-2, -1))


def _flipped_crop(x: torch.Tensor, corner: str, fraction: float) -> torch.Tensor:
    return _crop(_hflip(x), corner, fraction)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1)


def _anti_transpose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1).flip(-2, -1)


def make_views(names: Sequence[str], shift: int = 1, zoom: float = 0.1, crop_fraction: float = 0.875) -> list[View]:
    """Build the views named in ``names``; presets and ``five_crop``/``ten_crop`` expand to several.

    Names: ``identity``, ``hflip``, ``vflip``, ``rot90``, ``rot180``, ``rot270`` (counter-clockwise),
    ``transpose``, ``anti_transpose`` (the other diagonal), ``shift_left``/``right``/``up``/``down`` (by
    ``shift`` pixels, zero fill),
    ``zoom_in`` (centre crop of ``1 - zoom`` of the side, resized back), ``zoom_out`` (resized to
    ``1 - zoom`` of the side, zero padded), ``five_crop`` (four corner crops and the centre crop of
    ``crop_fraction`` of each side, each resized back to the input size), ``ten_crop`` (``five_crop``
    of the image and of its mirror). Presets: ``flips`` (identity, hflip, vflip), ``d4`` (the eight
    symmetries of the square), ``shifts`` (identity and four shifts). Every view keeps the input's
    shape except the rotations by 90 and 270 degrees and the transposes of non-square images.

    Args:
        names: view or preset names.
        shift: pixels of the ``shift_*`` views.
        zoom: zoom amount of ``zoom_in`` / ``zoom_out``, in ``(0, 1)``.
        crop_fraction: side fraction of the ``five_crop`` / ``ten_crop`` crops, in ``(0, 1]``.

    Raises:
        ValueError: for an unknown name or an out-of-range amount.

    Example:
        >>> [v.name for v in make_views(["identity", "five_crop"])]
        ['identity', 'crop_tl', 'crop_tr', 'crop_bl', 'crop_br', 'crop_cc']
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("Expected views to name at least one view, but got an empty sequence.")
    check_positive("shift", shift, integer=True)
    if not 0.0 < zoom < 1.0:
        raise ValueError(f"Expected zoom to be in (0, 1), but got {zoom!r}.")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"Expected crop_fraction to be in (0, 1], but got {crop_fraction!r}.")
    s = int(shift)
    corners = ("tl", "tr", "bl", "br", "cc")
    views: list[View] = []
    for name in names:
        check_choice("views", name, VIEW_NAMES)
        for part in _PRESETS.get(name, (name,)):
            if part == "identity":
                views.append(View("identity", _identity, _identity))
            elif part == "hflip":
                views.append(View("hflip", _hflip, _hflip))
            elif part == "vflip":
                views.append(View("vflip", _vflip, _vflip))
            elif part.startswith("rot"):
                k = int(part[3:]) // 90
                views.append(View(part, partial(_rotate, k=k), partial(_rotate, k=-k)))
            elif part == "transpose":
                views.append(View("transpose", _transpose, _transpose))
            elif part == "anti_transpose":
                views.append(View("anti_transpose", _anti_transpose, _anti_transpose))
            elif part.startswith("shift_"):
                dy, dx = {"left": (0, -s), "right": (0, s), "up": (-s, 0), "down": (s, 0)}[part[6:]]
                views.append(View(part, partial(_shift, dy=dy, dx=dx)))
            elif part == "zoom_in":
                views.append(View(part, partial(_zoom_in, fraction=1.0 - zoom)))
            elif part == "zoom_out":
                views.append(View(part, partial(_zoom_out, fraction=1.0 - zoom)))
            else:  # five_crop, ten_crop
                for c in corners:
                    views.append(View(f"crop_{c}", partial(_crop, corner=c, fraction=crop_fraction)))
                if part == "ten_crop":
                    for c in corners:
                        views.append(View(f"hflip_crop_{c}", partial(_flipped_crop, corner=c, fraction=crop_fraction)))
    return views


class _Scores(nn.Module):
    """Accuracy, negative log-likelihood and calibration error of one stream of predictions."""

    def __init__(self, num_classes: int, ece: bool = True) -> None:
        super().__init__()
        self.acc = MulticlassAccuracy(num_classes, average="micro")
        self.nll = MeanMetric()
        self.ece = MulticlassCalibrationError(num_classes, n_bins=15, norm="l1") if ece else None

    def update(self, log_probs: torch.Tensor, labels: torch.Tensor) -> None:
        probs = log_probs.exp()
        self.acc.update(probs, labels)
        self.nll.update(-log_probs.gather(-1, labels.view(-1, 1)).squeeze(-1))
        if self.ece is not None:
            self.ece.update(probs, labels)

    def compute(self) -> dict[str, torch.Tensor]:
        """Synced across ranks by torchmetrics (every rank must call it)."""
        out = {"acc": self.acc.compute(), "nll": self.nll.compute()}
        if self.ece is not None:
            out["ece"] = self.ece.compute()
        return out

    def reset(self) -> None:
        for metric in (self.acc, self.nll, self.ece):
            if metric is not None:
                metric.reset()


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` from a tuple/list batch, a ``{"image", "label"}`` dict, or a bare tensor."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    if isinstance(batch, dict):
        return batch["image"], batch.get("label")
    if isinstance(batch, torch.Tensor):
        return batch, None
    raise TypeError(
        f"Cannot find the images in a batch of type {type(batch).__name__}: pass batch_to_input=... or"
        " override batch_to_input() to return (images, labels or None)."
    )


def _labels(y: torch.Tensor) -> torch.Tensor:
    return y.argmax(-1) if y.is_floating_point() else y.long()


def _forward_context(trainer: pl.Trainer | None) -> contextlib.AbstractContextManager:
    plugin = getattr(trainer, "precision_plugin", None) if trainer is not None else None
    return plugin.forward_context() if plugin is not None else contextlib.nullcontext()


class _MergingCallback(Callback):
    """The loop wiring shared by the callbacks that merge several predictions of each batch.

    A subclass gives ``_on_batch`` (merged log-probabilities of a batch, metrics updated) and ``_on_epoch_end``
    (metrics logged); this base runs them in the validation, test and predict loops of ``self.stages``, keeps
    the merged test probabilities for :attr:`test_probabilities` and the predict ones in :attr:`predictions`.
    """

    _probability_name = "merged"
    stages: tuple[str, ...]

    def __init__(self) -> None:
        super().__init__()
        self.predictions: list[torch.Tensor] = []
        self._test_probs: list[torch.Tensor] = []

    def _on_batch(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> torch.Tensor:
        raise NotImplementedError

    def _on_epoch_end(self, module: pl.LightningModule, stage: str) -> None:
        raise NotImplementedError

    @override
    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if "val" in self.stages and not trainer.sanity_checking:
            self._on_batch(trainer, pl_module, batch, batch_idx, "val")

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._on_epoch_end(pl_module, "val")

    @override
    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._test_probs = []

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
        if "test" in self.stages:
            merged = self._on_batch(trainer, pl_module, batch, batch_idx, "test")
            self._test_probs.append(merged.detach().exp().cpu())

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._on_epoch_end(pl_module, "test")

    @property
    def test_probabilities(self) -> dict[str, torch.Tensor]:
        """This rank's merged test probabilities ``[N, C]`` of the last test run, in batch order.

        :class:`~lightning_cnn.TrainingPlots` draws them in its reliability diagram.
        """
        return {self._probability_name: torch.cat(self._test_probs)} if self._test_probs else {}

    @override
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.predictions = []

    @override
    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if "predict" not in self.stages:
            return
        probs = self._on_batch(trainer, pl_module, batch, batch_idx, "predict").exp()
        _replace_outputs(outputs, probs)
        self.predictions.append(probs.cpu())


class TestTimeAugmentation(_MergingCallback):
    """Evaluate (and predict) on several views of each batch, merged into one prediction.

    In the validation, test and predict loops, after the module's own step, the callback passes the
    batch's images (already on the device and normalized) through ``K`` deterministic views (see
    :func:`make_views`) — and, with ``mc_dropout=n``, ``n`` times each with the dropout layers active
    (Monte Carlo dropout) — and merges the ``K·n`` predictions with
    :func:`~lightning_cnn.functional.merge_log_probs`. It logs ``{stage}/tta_acc``, ``{stage}/tta_nll``
    and ``{stage}/tta_ece`` beside the module's own metrics, from torchmetrics objects it owns (synced
    across ranks). In predict it stores the merged probabilities in :attr:`predictions` and, when the
    module's ``predict_step`` returns a ``[B, num_classes]`` tensor, writes them into it, so
    ``trainer.predict`` returns the TTA probabilities.

    Views go through the model in chunks of at most ``max_batch`` images: with ``batched=True`` several
    views are concatenated into one forward (fast on a GPU); with ``batched=False`` each view is its own
    forward (on a CPU that is as fast or faster, and needs less memory). ``batched=None`` picks
    concatenation on CUDA and the loop elsewhere. The module must be in eval mode (Lightning does that);
    note that concatenated views share a forward, so BatchNorm in train mode would mix them.

    Works with any LightningModule whose ``forward`` returns logits; override :meth:`batch_to_input`
    (or pass ``batch_to_input``) for batches that are not ``(x, y)`` and :meth:`forward` for models that
    need more than ``module(x)``.

    Args:
        views: view and preset names (see :func:`make_views`); ``K`` is the number after expansion.
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
            augmentation runs on the batch as the model sees it (after normalization): geometric
            augmentations act as in training, colour jitter acts on normalized values.
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
        >>> trainer = pl.Trainer(callbacks=[tta], logger=False)  # doctest: +SKIP
    """

    __test__ = False  # not a pytest test class, despite its name
    _probability_name = "tta"

    def __init__(
        self,
        views: Sequence[ViewName] = ("identity", "hflip"),
        merge: MergeMode = "mean",
        mc_dropout: int = 0,
        batched: bool | None = None,
        max_batch: int | None = None,
        stages: Sequence[Stage] = ("val", "test", "predict"),
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
        super().__init__()
        check_choice("merge", merge, MERGE_MODES)
        check_positive("random_passes", random_passes, allow_zero=True)
        if (
            isinstance(random_weight, bool)
            or not isinstance(random_weight, (int, float))
            or not 0 <= random_weight <= 1
        ):
            raise ValueError(f"Expected random_weight to be in [0, 1], but got {random_weight!r}.")
        check_positive("mc_dropout", mc_dropout, allow_zero=True)
        if max_batch is not None:
            check_positive("max_batch", max_batch)
        if num_classes is not None:
            check_positive("num_classes", num_classes)
        stage_names: tuple[str, ...] = (stages,) if isinstance(stages, str) else tuple(stages)
        for stage in stage_names:
            check_choice("stages", stage, _STAGES)
        self.view_names = (views,) if isinstance(views, str) else tuple(views)
        self.views = make_views(self.view_names, shift=shift, zoom=zoom, crop_fraction=crop_fraction)
        self.merge = merge
        self.mc_dropout = int(mc_dropout)
        self.batched = batched
        self.max_batch = max_batch
        self.stages = stage_names
        self.num_classes = num_classes
        self.seed = seed
        self._batch_to_input = batch_to_input
        self._scores: dict[str, _Scores] = {}
        self.random_passes = int(random_passes)
        self.random_weight = float(random_weight)
        self._augmentation: nn.Module | None = build_augmentation(augment) if augment is not None else None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.random_passes and self._augmentation is None:
            self._augmentation = getattr(getattr(trainer, "datamodule", None), "augmentation", None)
            if self._augmentation is None:
                raise ValueError(
                    f"random_passes={self.random_passes} replays the training augmentation, but the DataModule has"
                    " none: give augment (a preset, list or dict, as the DataModule's augment) to the callback."
                )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(views=self.view_names, merge=self.merge, mc_dropout=self.mc_dropout)

    @property
    def num_views(self) -> int:
        """``K``: predictions merged per sample (views times Monte Carlo passes)."""
        return len(self.views) * max(self.mc_dropout, 1)

    # ------------------------------------------------------------------ overridable pieces
    def batch_to_input(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(images [B, C, H, W], labels [B] or None)`` of a batch; override for other shapes."""
        if self._batch_to_input is not None:
            return self._batch_to_input(batch)
        return _split_batch(batch)

    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` of the module for images ``[N, C, H, W]``."""
        return module(x)

    @staticmethod
    def is_dropout(module: nn.Module) -> bool:
        """Whether Monte Carlo dropout switches ``module`` on: torch's dropouts, DropConnect, drop path."""
        if isinstance(module, nn.modules.dropout._DropoutNd):
            return True
        name = type(module).__name__.lower()
        return "dropconnect" in name or "droppath" in name or "stochasticdepth" in name

    # ------------------------------------------------------------------ the math
    def _use_batched(self, device: torch.device) -> bool:
        return device.type == "cuda" if self.batched is None else self.batched

    def _chunks(self, x: torch.Tensor, batched: bool) -> Iterator[tuple[torch.Tensor, int]]:
        """Yield ``(images, number of views in them)``; a view larger than ``max_batch`` is split."""
        b = x.shape[0]
        limit = self.max_batch if self.max_batch is not None else (len(self.views) * b if batched else b)
        per_chunk = max(1, limit // max(b, 1)) if batched else 1
        i = 0
        while i < len(self.views):
            first = self.views[i](x)
            group = [first]
            while batched and len(group) < per_chunk and i + len(group) < len(self.views):
                nxt = self.views[i + len(group)](x)
                if nxt.shape != first.shape:  # e.g. rot90 of a non-square image
                    break
                group.append(nxt)
            i += len(group)
            images = group[0] if len(group) == 1 else torch.cat(group)
            yield images, len(group)

    @contextlib.contextmanager
    def _dropout_on(self, module: nn.Module) -> Iterator[None]:
        switched = [m for m in module.modules() if self.is_dropout(m) and not m.training]
        for m in switched:
            m.training = True
        try:
            yield
        finally:
            for m in switched:
                m.training = False

    def view_logits(self, module: nn.Module, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Logits of every view (and Monte Carlo pass), stacked as ``[K, B, C]``.

        Args:
            module: the classifier (in eval mode).
            x: images.
            seed: seed of the dropout masks when ``mc_dropout > 0``.

        Shape:
            - x: ``[B, C, H, W]``
            - output: ``[K, B, num_classes]``
        """
        batched = self._use_batched(x.device)
        b = x.shape[0]
        split = self.max_batch if self.max_batch is not None and self.max_batch < b else None

        def run() -> list[torch.Tensor]:
            out: list[torch.Tensor] = []
            for images, n in self._chunks(x, batched):
                if split is not None and n == 1:
                    logits = torch.cat([self.forward(module, part) for part in images.split(split)])
                else:
                    logits = self.forward(module, images)
                out.extend(logits.view(n, b, -1).unbind(0))
            return out

        with torch.no_grad():
            if self.mc_dropout == 0:
                return torch.stack(run())
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), self._dropout_on(module):
                if seed is not None:
                    torch.manual_seed(seed)
                return torch.stack([t for _ in range(self.mc_dropout) for t in run()])

    def merged_log_probs(self, module: nn.Module, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Merged log-probabilities ``[B, num_classes]`` of the views of images ``[B, C, H, W]``.

        With ``random_passes=n`` the views' merged probabilities are blended with the mean probabilities of
        ``n`` randomly augmented passes: ``random_weight * views + (1 - random_weight) * augmented``.
        """
        merged = merge_log_probs(self.view_logits(module, x, seed), self.merge)
        if not self.random_passes:
            return merged
        if self._augmentation is None:
            raise RuntimeError("random_passes needs an augmentation: pass augment, or use a DataModule that has one.")
        generator = torch.Generator(device=x.device).manual_seed(self.seed if seed is None else seed)
        passes = torch.stack(
            [
                self.forward(module, self._augmentation.to(x.device)(x, generator=generator)).float().log_softmax(-1)
                for _ in range(self.random_passes)
            ]
        )
        augmented = torch.logsumexp(passes, 0) - math.log(self.random_passes)
        w = self.random_weight
        if w == 1.0:
            return merged
        if w == 0.0:
            return augmented
        return torch.logaddexp(merged + math.log(w), augmented + math.log(1 - w))

    # ------------------------------------------------------------------ hooks
    def _scores_for(self, stage: str, num_classes: int, device: torch.device) -> _Scores:
        scores = self._scores.get(stage)
        if scores is None:
            scores = self._scores[stage] = _Scores(self.num_classes or num_classes)
        return scores.to(device)

    def _on_batch(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> torch.Tensor:
        x, y = self.batch_to_input(batch)
        seed = self.seed + batch_idx + 1_000_003 * trainer.global_rank
        with _forward_context(trainer):
            log_probs = self.merged_log_probs(module, x, seed).float()
        if y is not None and stage != "predict":
            self._scores_for(stage, log_probs.shape[-1], log_probs.device).update(log_probs, _labels(y))
        return log_probs

    def _on_epoch_end(self, module: pl.LightningModule, stage: str) -> None:
        scores = self._scores.get(stage)
        if scores is None or stage not in self.stages:
            return
        for name, value in scores.compute().items():
            module.log(f"{stage}/tta_{name}", value, on_step=False, on_epoch=True, sync_dist=False)
        scores.reset()


def _replace_outputs(outputs: Any, probs: torch.Tensor) -> None:
    """Write ``probs`` into a predict step's ``[B, C]`` output tensor, so the trainer returns them."""
    if isinstance(outputs, torch.Tensor) and outputs.shape == probs.shape and outputs.is_floating_point():
        outputs.copy_(probs.to(outputs.dtype))
