"""A classifier run on several views of each batch, with optional Monte Carlo dropout, merged into one prediction."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from lightning_cnn._utils.validation import check_choice, check_positive, check_range
from lightning_cnn.functional import MERGE_MODES, MergeMode, merge_log_probs
from lightning_cnn.tta.views import View, make_views

__all__ = ["TTAModel", "is_dropout"]


def is_dropout(module: nn.Module) -> bool:
    """Whether Monte Carlo dropout switches ``module`` on: torch's dropouts, DropConnect, drop path.

    Example:
        >>> is_dropout(nn.Dropout2d(0.1)), is_dropout(nn.ReLU())
        (True, False)
    """
    # torch's private base of its Dropout1d/2d/3d/AlphaDropout classes: one check covers them all.
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return True
    name = type(module).__name__.lower()
    return "dropconnect" in name or "droppath" in name or "stochasticdepth" in name


def _call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


class TTAModel(nn.Module):
    """Run a classifier on ``K`` deterministic views of each batch and merge the ``K`` predictions.

    ``forward`` returns merged log-probabilities ``[B, C]``: they serve as logits (their softmax is the merged
    probability). The views (see :func:`~lightning_cnn.tta.make_views`) go through the model in chunks of at most
    ``max_batch`` images: with ``batched=True`` several views are concatenated into one forward (fast on a GPU);
    with ``batched=False`` each view is its own forward (on a CPU as fast or faster, and lighter on memory);
    ``batched=None`` concatenates on CUDA only. Views of another shape than the first (``rot90`` of a non-square
    image) start a new forward. With ``mc_dropout=n`` every view runs ``n`` times with the dropout layers active
    (Monte Carlo dropout), seeded when a seed is given, and the dropout layers are back in eval mode after.
    With ``random_passes=n``, the views' merged probability is blended with the mean probability of ``n`` passes
    of ``augmentation`` (called as ``augmentation(x, generator=...)``): ``random_weight * views +
    (1 - random_weight) * augmented``.

    The model must be in eval mode: concatenated views share a forward, so BatchNorm in train mode would mix them.

    Args:
        model: the classifier; ``model(x)`` returns logits ``[N, C]`` for images ``[N, C_in, H, W]``.
        views: view and preset names, or built :class:`~lightning_cnn.tta.View` objects (not mixed).
        merge: how the ``K`` predictions are merged (see :func:`~lightning_cnn.functional.merge_log_probs`).
        mc_dropout: passes with dropout active per view (``0``: dropout stays off).
        batched: concatenate views into one forward; ``None``: on CUDA only.
        max_batch: most images per forward; ``None``: no limit when batched, one view per forward otherwise.
        shift: pixels of the shift views.
        zoom: amount of the zoom views.
        crop_fraction: side fraction of the ``five_crop`` / ``ten_crop`` crops.
        random_passes: passes of random augmentation blended with the views (``0``: none).
        random_weight: weight of the views' merged prediction in the blend.
        augmentation: the random augmentation of those passes.
        seed: seed of the random passes when a call gives none.
        forward_fn: ``forward_fn(model, images)`` gives the logits, for models that need more than ``model(x)``.
        dropout_filter: which modules Monte Carlo dropout switches on (default :func:`is_dropout`).

    Raises:
        ValueError: for an unknown view or merge mode, or an out-of-range number.

    Shape:
        - x: ``[B, C_in, H, W]``
        - output: ``[B, C]`` log-probabilities

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
        >>> tta = TTAModel(net, views=("identity", "hflip"), merge="mean")
        >>> x = torch.randn(2, 1, 4, 4)
        >>> tta.num_views, tta.view_logits(x).shape, tta(x).shape
        (2, torch.Size([2, 2, 3]), torch.Size([2, 3]))
        >>> expected = (net(x).softmax(-1) + net(x.flip(-1)).softmax(-1)) / 2
        >>> torch.allclose(tta(x).exp(), expected)
        True
    """

    def __init__(
        self,
        model: nn.Module,
        views: Sequence[str] | Sequence[View] = ("identity", "hflip"),
        merge: MergeMode = "mean",
        *,
        mc_dropout: int = 0,
        batched: bool | None = None,
        max_batch: int | None = None,
        shift: int = 1,
        zoom: float = 0.1,
        crop_fraction: float = 0.875,
        random_passes: int = 0,
        random_weight: float = 0.25,
        augmentation: nn.Module | None = None,
        seed: int = 0,
        forward_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
        dropout_filter: Callable[[nn.Module], bool] = is_dropout,
    ) -> None:
        super().__init__()
        check_choice("merge", merge, MERGE_MODES)
        check_positive("random_passes", random_passes, allow_zero=True)
        check_range("random_weight", random_weight, 0, 1)
        check_positive("mc_dropout", mc_dropout, allow_zero=True)
        if max_batch is not None:
            check_positive("max_batch", max_batch)
        given = (views,) if isinstance(views, str) else tuple(views)
        if given and all(isinstance(v, View) for v in given):
            self.views: list[View] = list(given)  # type: ignore[arg-type]
        else:
            self.views = make_views(given, shift=shift, zoom=zoom, crop_fraction=crop_fraction)  # type: ignore[arg-type]
        self.model = model
        self.merge = merge
        self.mc_dropout = int(mc_dropout)
        self.batched = batched
        self.max_batch = max_batch
        self.random_passes = int(random_passes)
        self.random_weight = float(random_weight)
        self.augmentation = augmentation
        self.seed = seed
        self.forward_fn = forward_fn or _call
        self.dropout_filter = dropout_filter

    @property
    def num_views(self) -> int:
        """``K``: predictions merged per sample (views times Monte Carlo passes)."""
        return len(self.views) * max(self.mc_dropout, 1)

    def use_batched(self, device: torch.device) -> bool:
        """Whether views are concatenated into one forward on ``device``."""
        return device.type == "cuda" if self.batched is None else self.batched

    def _chunks(self, x: torch.Tensor, batched: bool) -> Iterator[tuple[torch.Tensor, int]]:
        """Yield ``(images, number of views in them)``; a view larger than ``max_batch`` is split later."""
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
            yield (group[0] if len(group) == 1 else torch.cat(group)), len(group)

    @contextlib.contextmanager
    def _dropout_on(self) -> Iterator[None]:
        switched = [m for m in self.model.modules() if self.dropout_filter(m) and not m.training]
        for m in switched:
            m.training = True
        try:
            yield
        finally:
            for m in switched:
                m.training = False

    def _views_once(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits ``[B, C]`` of each view, in view order."""
        batched, b = self.use_batched(x.device), x.shape[0]
        split = self.max_batch if self.max_batch is not None and self.max_batch < b else None
        out: list[torch.Tensor] = []
        for images, n in self._chunks(x, batched):
            if split is not None and n == 1:
                logits = torch.cat([self.forward_fn(self.model, part) for part in images.split(split)])
            else:
                logits = self.forward_fn(self.model, images)
            out.extend(logits.view(n, b, -1).unbind(0))
        return out

    def view_logits(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Logits of every view (and Monte Carlo pass), stacked as ``[K, B, C]``.

        Args:
            x: images.
            seed: seed of the dropout masks when ``mc_dropout > 0``.

        Shape:
            - x: ``[B, C_in, H, W]``
            - output: ``[K, B, C]``
        """
        with torch.no_grad():
            if self.mc_dropout == 0:
                return torch.stack(self._views_once(x))
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), self._dropout_on():
                if seed is not None:
                    torch.manual_seed(seed)
                return torch.stack([t for _ in range(self.mc_dropout) for t in self._views_once(x)])

    def forward(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Merged log-probabilities ``[B, C]`` of the views (blended with the random passes, if any)."""
        merged = merge_log_probs(self.view_logits(x, seed), self.merge)
        if not self.random_passes:
            return merged
        if self.augmentation is None:
            raise RuntimeError("random_passes needs an augmentation: pass augment, or use a DataModule that has one.")
        generator = torch.Generator(device=x.device).manual_seed(self.seed if seed is None else seed)
        augment = self.augmentation.to(x.device)
        with torch.no_grad():
            passes = torch.stack(
                [
                    self.forward_fn(self.model, augment(x, generator=generator)).float().log_softmax(-1)
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
