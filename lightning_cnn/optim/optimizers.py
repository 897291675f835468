"""Every :mod:`torch.optim` algorithm by a lower-case name, and timm's beside them, with a default learning rate each.

timm's optimizers (:mod:`~lightning_cnn.optim.timm_optimizers`) are named by their timm name, or ``"timm:<name>"``
where torch.optim has the same name (``"adamw"`` stays torch's).

Parameters are split into two groups: weights that decay, and biases and normalization parameters (every
tensor with fewer than two dimensions) that do not, unless ``decay_all=True`` (:func:`param_groups`).
Special rules:

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
from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.optim import Optimizer

from lightning_cnn._utils.validation import check_choice, check_positive, check_registry
from lightning_cnn.optim.lbfgs import L2LBFGS
from lightning_cnn.optim.muon import MuonWithAdamW
from lightning_cnn.optim.param_groups import output_layer, param_groups
from lightning_cnn.optim.timm_optimizers import (
    TIMM_DEFAULT_LR,
    TIMM_OPTIMIZER_NAMES,
    TimmOptimizerName,
    build_timm_optimizer,
)

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "TORCH_OPTIMIZER_NAMES",
    "OptimizerName",
    "TorchOptimizerName",
    "build_optimizer",
]

# fmt: off
TorchOptimizerName = Literal[
    "adadelta", "adafactor", "adagrad", "adam", "adamw", "sparse_adam", "adamax", "asgd",
    "lbfgs", "muon", "nadam", "radam", "rmsprop", "rprop", "sgd",
]
# fmt: on
TORCH_OPTIMIZER_NAMES: tuple[str, ...] = get_args(TorchOptimizerName)
#: Every optimizer name: torch.optim's, then timm's.
OptimizerName = Literal[TorchOptimizerName, TimmOptimizerName]
OPTIMIZER_NAMES: tuple[str, ...] = TORCH_OPTIMIZER_NAMES + TIMM_OPTIMIZER_NAMES

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

#: Learning rate used when ``lr=None``: a value that trains a small CNN well with each algorithm (timm's included).
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
    **TIMM_DEFAULT_LR,
}
check_registry("OPTIMIZERS", OPTIMIZERS, TORCH_OPTIMIZER_NAMES)
check_registry("DEFAULT_LR", DEFAULT_LR, OPTIMIZER_NAMES)

_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9},
    "lbfgs": {"line_search_fn": "strong_wolfe", "max_iter": 5, "history_size": 20},
}


def build_optimizer(
    name: str,
    module: nn.Module,
    lr: float | None = None,
    weight_decay: float = 0.0,
    decay_all: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Optimizer:
    """Build an optimizer by name (:mod:`torch.optim`'s or timm's) for the trainable parameters of ``module``.

    Args:
        name: one of :data:`OPTIMIZER_NAMES` (``"adamw"``, ``"sgd"``, ``"lbfgs"``, ``"muon"``, ``"lion"``,
            ``"timm:adamw"``, ...).
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
    check_choice("optimizer", name, OPTIMIZER_NAMES)
    if name in TIMM_OPTIMIZER_NAMES:
        return build_timm_optimizer(name, module, lr, weight_decay, decay_all, options)
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
        out = output_layer(module)
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
