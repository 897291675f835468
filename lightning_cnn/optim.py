"""Optimizers and learning-rate schedulers by name.

Every algorithm of :mod:`torch.optim` is available by a lower-case name. Parameters are split into
two groups: weights that decay, and biases and normalization parameters (every tensor with fewer than
two dimensions) that do not, unless ``decay_all=True``. Special rules:

- ``"muon"``: Muon orthogonalizes updates of 2-D matrices only, so the hidden 2-D weights (fully
  connected layers, except the output layer) go to Muon and everything else (conv filters, biases,
  norms, the output layer) to AdamW, inside one :class:`MuonWithAdamW` optimizer object. Both use the
  same learning rate (Muon's step is rescaled to match AdamW's RMS).
- ``"lbfgs"``: one parameter group (LBFGS supports no groups) with strong-Wolfe line search; it
  calls the training closure several times a step, which Lightning provides. ``weight_decay`` adds an L2
  term to its objective (:class:`L2LBFGS`).
- ``"sparse_adam"``: needs sparse gradients, which no convolution or linear layer produces; it is
  refused with an error naming ``"adam"`` as the replacement.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lightning_cnn._utils.validation import check_choice, check_positive

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULERS",
    "L2LBFGS",
    "MuonWithAdamW",
    "WarmupReduceLROnPlateau",
    "build_optimizer",
    "build_scheduler",
    "param_groups",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adadelta": torch.optim.Adadelta,
    "adafactor": torch.optim.Adafactor,
    "adagrad": torch.optim.Adagrad,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sparse_adam": torch.optim.SparseAdam,
    "adamax": torch.optim.Adamax,
    "asgd": torch.optim.ASGD,
    "lbfgs": torch.optim.LBFGS,
    "muon": torch.optim.Muon,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "rmsprop": torch.optim.RMSprop,
    "rprop": torch.optim.Rprop,
    "sgd": torch.optim.SGD,
}

#: Learning rate used when ``lr=None``: a value that trains a small CNN well with each algorithm.
DEFAULT_LR: dict[str, float] = {
    "adadelta": 1.0,
    "adafactor": 1e-2,
    "adagrad": 1e-2,
    "adam": 1e-3,
    "adamw": 1e-3,
    "sparse_adam": 1e-3,
    "adamax": 2e-3,
    "asgd": 1e-1,
    "lbfgs": 1e-1,
    "muon": 1e-3,
    "nadam": 2e-3,
    "radam": 1e-2,
    "rmsprop": 1e-3,
    "rprop": 1e-3,
    "sgd": 5e-2,
}

_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9},
    "lbfgs": {"line_search_fn": "strong_wolfe", "max_iter": 5, "history_size": 20},
}

SCHEDULERS = ("step", "multistep", "exponential", "cosine", "cosine_warm_restarts", "one_cycle", "plateau")


def param_groups(
    module: nn.Module, weight_decay: float, decay_all: bool = False, exclude: Iterable[nn.Parameter] = ()
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decaying group and a non-decaying group.

    Tensors with fewer than two dimensions (biases, normalization scales and shifts) get no weight decay
    unless ``decay_all``. Frozen parameters (``requires_grad=False``) and those in ``exclude`` are left out.
    Empty groups are dropped.

    Example:
        >>> groups = param_groups(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), weight_decay=0.1)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.1), (3, 0.0)]
    """
    skip = {id(p) for p in exclude}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in module.parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        (decay if decay_all or p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class MuonWithAdamW(Optimizer):
    """Muon for the hidden 2-D weights and AdamW for every other parameter, as one optimizer.

    Both inner optimizers share this object's ``param_groups`` (Muon's groups first) and ``state``, so
    LR schedulers, gradient clipping, ``state_dict`` and Lightning's checkpointing see one optimizer.

    Args:
        muon_params: parameter groups (2-D tensors only) for Muon.
        adamw_params: parameter groups for AdamW.
        lr: learning rate of both.
        muon_options: extra arguments of :class:`torch.optim.Muon`.
        adamw_options: extra arguments of :class:`torch.optim.AdamW`.
    """

    def __init__(
        self,
        muon_params: list[dict[str, Any]],
        adamw_params: list[dict[str, Any]],
        lr: float = 1e-3,
        muon_options: Mapping[str, Any] | None = None,
        adamw_options: Mapping[str, Any] | None = None,
    ) -> None:
        for group in muon_params:
            bad = [tuple(p.shape) for p in group["params"] if p.ndim != 2]
            if bad:
                raise ValueError(f"Muon takes only 2-D parameters, but got shapes {bad}.")
        muon_kw = {"adjust_lr_fn": "match_rms_adamw", **(muon_options or {})}
        self.muon = torch.optim.Muon(muon_params, lr=lr, **muon_kw) if muon_params else None
        self.adamw = torch.optim.AdamW(adamw_params, lr=lr, **(adamw_options or {})) if adamw_params else None
        groups = [g for opt in (self.muon, self.adamw) if opt is not None for g in opt.param_groups]
        self._n_muon = len(self.muon.param_groups) if self.muon is not None else 0
        super().__init__(groups, {"lr": lr})
        self._share()

    def _share(self) -> None:
        if self.muon is not None:
            self.muon.param_groups = self.param_groups[: self._n_muon]
            self.muon.state = self.state
        if self.adamw is not None:
            self.adamw.param_groups = self.param_groups[self._n_muon :]
            self.adamw.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._share()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in (self.muon, self.adamw):
            if opt is not None:
                opt.step()
        return loss


class L2LBFGS(torch.optim.LBFGS):
    """LBFGS whose objective adds an L2 penalty ``l2 / 2 * ||w||^2`` on the given parameters.

    :class:`torch.optim.LBFGS` has no weight decay. Here ``weight_decay`` means what it means for SGD: an L2
    term in the objective, whose value and gradient LBFGS's line search sees. Without ``l2`` it is plain LBFGS.

    Example:
        >>> layer = nn.Linear(3, 1, bias=False)
        >>> opt = L2LBFGS(layer.parameters(), l2=1.0, l2_params=[layer.weight], line_search_fn="strong_wolfe")
        >>> x, y = torch.randn(64, 3), torch.zeros(64, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (layer(x) - y).pow(2).mean()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> bool(layer.weight.abs().max() < 1e-4)  # the penalty pulls the weights to the optimum 0
        True
    """

    def __init__(
        self, params: Iterable[nn.Parameter], l2: float = 0.0, l2_params: Iterable[nn.Parameter] = (), **kwargs: Any
    ) -> None:
        super().__init__(params, **kwargs)
        self.l2 = l2
        self._l2_params = list(l2_params)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        if not self.l2 or not self._l2_params:
            return super().step(closure)

        def penalized() -> Any:
            loss = closure()
            penalty = torch.zeros((), device=self._l2_params[0].device)
            for p in self._l2_params:
                penalty += 0.5 * self.l2 * p.pow(2).sum()
                if p.grad is not None:
                    p.grad.add_(p, alpha=self.l2)
            return loss + penalty

        return super().step(penalized)


def _output_layer(module: nn.Module) -> nn.Linear | None:
    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


def build_optimizer(
    name: str,
    module: nn.Module,
    lr: float | None = None,
    weight_decay: float = 0.0,
    decay_all: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Optimizer:
    """Build a :mod:`torch.optim` optimizer by name for the trainable parameters of ``module``.

    Args:
        name: one of :data:`OPTIMIZERS` (``"adamw"``, ``"sgd"``, ``"lbfgs"``, ``"muon"``, ...).
        module: the network whose parameters are optimized.
        lr: learning rate; ``None`` takes :data:`DEFAULT_LR` for the optimizer.
        weight_decay: decay of weights (not of biases and norms, unless ``decay_all``).
        decay_all: decay every parameter.
        options: further keyword arguments of the optimizer (``momentum``, ``betas``, ``nesterov``, ...).

    Raises:
        ValueError: for an unknown name, ``sparse_adam``, or ``weight_decay`` with an optimizer that
            has none.

    Example:
        >>> opt = build_optimizer("sgd", nn.Linear(3, 2), options={"nesterov": True})
        >>> type(opt).__name__, opt.defaults["lr"], opt.defaults["momentum"]
        ('SGD', 0.05, 0.9)
    """
    check_choice("optimizer", name, OPTIMIZERS)
    lr = DEFAULT_LR[name] if lr is None else lr
    check_positive("lr", lr)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    if name == "sparse_adam":
        raise ValueError(
            "optimizer='sparse_adam' needs sparse gradients, which no layer of a CNN produces"
            " (only nn.Embedding(sparse=True) does); use optimizer='adam' (or 'adamw') instead."
        )
    cls = OPTIMIZERS[name]
    kwargs = {**_DEFAULT_OPTIONS.get(name, {}), **(options or {})}
    if name == "muon":
        out = _output_layer(module)
        exclude = {id(out.weight)} if out is not None else set()
        muon_p = [p for n, p in module.named_parameters() if p.requires_grad and p.ndim == 2 and id(p) not in exclude]
        groups = param_groups(module, weight_decay, decay_all, exclude=muon_p)
        return MuonWithAdamW(
            [{"params": muon_p, "weight_decay": weight_decay}] if muon_p else [],
            groups,
            lr=lr,
            muon_options=kwargs,
        )
    if name == "lbfgs":
        params = [p for p in module.parameters() if p.requires_grad]
        decayed = [p for g in param_groups(module, weight_decay, decay_all) if g["weight_decay"] for p in g["params"]]
        return L2LBFGS(params, lr=lr, l2=weight_decay, l2_params=decayed, **kwargs)
    accepts_decay = "weight_decay" in inspect.signature(cls.__init__).parameters
    if weight_decay and not accepts_decay:
        raise ValueError(f"optimizer={name!r} has no weight decay, but got weight_decay={weight_decay!r}; use 0.")
    groups = param_groups(module, weight_decay, decay_all)
    if not accepts_decay:
        for g in groups:
            g.pop("weight_decay")
    return cls(groups, lr=lr, **kwargs)  # type: ignore[call-arg]


class WarmupReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` after a linear warm-up of ``warmup_epochs`` epochs.

    The learning rate starts at ``start_factor`` times each group's rate and reaches it after ``warmup_epochs``
    calls of :meth:`step` (as :class:`~torch.optim.lr_scheduler.LinearLR` does); the metrics of those epochs are
    not watched. Then the plateau logic runs unchanged. Being a ``ReduceLROnPlateau``, Lightning passes it the
    monitored metric; its state (warm-up progress included) is in :meth:`state_dict`.

    Example:
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> sched = WarmupReduceLROnPlateau(opt, warmup_epochs=2, patience=0, factor=0.5, threshold=1.0)
        >>> lrs = [opt.param_groups[0]["lr"]]
        >>> for loss in (1.0, 1.0, 1.0, 1.0):
        ...     sched.step(loss)
        ...     lrs.append(opt.param_groups[0]["lr"])
        >>> [round(lr, 6) for lr in lrs]
        [0.001, 0.0505, 0.1, 0.05, 0.025]
    """

    def __init__(self, optimizer: Optimizer, warmup_epochs: int, start_factor: float = 0.01, **kwargs: Any) -> None:
        check_positive("warmup_epochs", warmup_epochs)
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"Expected start_factor to be in (0, 1], but got {start_factor!r}.")
        super().__init__(optimizer, **kwargs)
        self.warmup_epochs = warmup_epochs
        self.start_factor = start_factor
        self.warmup_done = 0
        self.target_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self._set_warmup_lrs()

    def _set_warmup_lrs(self) -> None:
        factor = self.start_factor + (1.0 - self.start_factor) * self.warmup_done / self.warmup_epochs
        for group, target in zip(self.optimizer.param_groups, self.target_lrs, strict=True):
            group["lr"] = target * factor
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        if self.warmup_done < self.warmup_epochs:
            self.warmup_done += 1
            self._set_warmup_lrs()
            return
        super().step(metrics, epoch)


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    monitor: str = "val/loss",
    options: Mapping[str, Any] | None = None,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """Build a learning-rate scheduler by name, as a Lightning ``lr_scheduler`` config.

    ``"one_cycle"`` steps every batch; the others step every epoch. ``warmup_epochs`` puts a linear
    warm-up (from 1% of the learning rate) in front of any scheduler but ``"one_cycle"``, which has its own
    (``pct_start``); in front of ``"plateau"`` it is :class:`WarmupReduceLROnPlateau`.

    Args:
        name: one of :data:`SCHEDULERS`.
        optimizer: the optimizer to schedule.
        max_epochs: length of training in epochs, for the schedulers that step every epoch.
        steps_per_epoch: optimizer steps an epoch, for ``"one_cycle"``.
        warmup_epochs: epochs of linear warm-up.
        monitor: metric that ``"plateau"`` watches.
        options: further keyword arguments of the torch scheduler (``step_size``, ``gamma``, ...).
        total_steps: optimizer steps of the whole training, for ``"one_cycle"`` (a training that stops within
            an epoch); ``None``: ``max_epochs * steps_per_epoch``.

    Raises:
        ValueError: for an unknown name, or a warm-up in front of ``"one_cycle"``.

    Example:
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> cfg = build_scheduler("cosine", opt, max_epochs=10, steps_per_epoch=5)
        >>> type(cfg["scheduler"]).__name__, cfg["interval"]
        ('CosineAnnealingLR', 'epoch')
    """
    check_choice("scheduler", name, SCHEDULERS)
    check_positive("warmup_epochs", warmup_epochs, allow_zero=True)
    opts = dict(options or {})
    sched = torch.optim.lr_scheduler
    interval = "epoch"
    span = max(max_epochs - warmup_epochs, 1)
    scheduler: LRScheduler | sched.ReduceLROnPlateau
    if name == "step":
        scheduler = sched.StepLR(optimizer, **{"step_size": max(span // 3, 1), "gamma": 0.1, **opts})
    elif name == "multistep":
        scheduler = sched.MultiStepLR(optimizer, **{"milestones": [span // 2, span * 3 // 4], "gamma": 0.1, **opts})
    elif name == "exponential":
        scheduler = sched.ExponentialLR(optimizer, **{"gamma": 0.9, **opts})
    elif name == "cosine":
        scheduler = sched.CosineAnnealingLR(optimizer, **{"T_max": span, **opts})
    elif name == "cosine_warm_restarts":
        scheduler = sched.CosineAnnealingWarmRestarts(optimizer, **{"T_0": max(span // 4, 1), **opts})
    elif name == "one_cycle":
        interval = "step"
        max_lr = [g["lr"] for g in optimizer.param_groups]
        steps = total_steps if total_steps is not None else max_epochs * steps_per_epoch
        scheduler = sched.OneCycleLR(optimizer, **{"max_lr": max_lr, "total_steps": max(steps, 1), **opts})
    else:
        plateau = {"patience": 2, "factor": 0.5, **opts}
        if warmup_epochs:
            scheduler = WarmupReduceLROnPlateau(optimizer, warmup_epochs, **plateau)
        else:
            scheduler = sched.ReduceLROnPlateau(optimizer, **plateau)
        return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
    if warmup_epochs:
        if interval == "step":
            raise ValueError(
                "scheduler='one_cycle' has its own warm-up (scheduler_options pct_start); set warmup_epochs=0."
            )
        warm = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warmup_epochs)
        scheduler = sched.SequentialLR(optimizer, [warm, scheduler], milestones=[warmup_epochs])
    return {"scheduler": scheduler, "interval": interval}
