"""timm's optimizers by name (Lion, LAMB, LARS, Adan, ADOPT, ...), beside the :mod:`torch.optim` ones.

Names follow one rule: an optimizer is called by its timm name (``"lion"``, ``"lamb"``, ``"adopt"``), and where
:mod:`torch.optim` has an algorithm of the same name, that name stays torch's and timm's takes the prefix
``"timm:"`` (``"adamw"`` is :class:`torch.optim.AdamW`; ``"timm:adamw"`` is timm's factory's ``adamw``). timm's
cautious (``c``-prefixed) and corrected-decay (``c``-suffixed) variants are not separate names: they are the same
class with ``optimizer_options`` ``{"caution": True}`` or ``{"corrected_weight_decay": True}``. APEX and
bitsandbytes optimizers (``fused*``, ``bnb*``) need CUDA and packages outside this project and are left out;
``"adahessian"`` is listed but refused (it needs the second-order graph of every backward pass).

The parameter groups are this project's (:func:`~lightning_cnn.optim.param_groups`: no weight decay on biases and
norms), handed to :func:`timm.optim.create_optimizer_v2` as groups, which timm passes through unchanged. timm is
imported only when one of these optimizers is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from torch import nn
from torch.optim import Optimizer

from lightning_cnn._utils.validation import check_choice, check_positive, check_registry
from lightning_cnn.optim.param_groups import output_layer, param_groups

__all__ = ["TIMM_DEFAULT_LR", "TIMM_OPTIMIZER_NAMES", "TimmOptimizerName", "build_timm_optimizer", "timm_name"]

#: The prefix of a timm optimizer whose timm name is also a :mod:`torch.optim` name here.
PREFIX = "timm:"

# fmt: off
TimmOptimizerName = Literal[
    "adabelief", "adafactorbv", "adahessian", "adamp", "adamuon", "adamwlegacy", "adan", "adanw", "adopt", "adoptw",
    "kron", "kronw", "lamb", "lambc", "lambcw", "lambw", "laprop", "larc", "lars", "lion", "madgrad", "madgradw",
    "mars", "momentum", "nadamlegacy", "nadamuon", "nadamw", "nlarc", "nlars", "nmuon", "novograd", "novogradw",
    "radabelief", "radamlegacy", "radamw", "rmsproptf", "rmsproptfw", "sgdp", "sgdw",
    "timm:adadelta", "timm:adafactor", "timm:adagrad", "timm:adam", "timm:adamax", "timm:adamw", "timm:muon",
    "timm:nadam", "timm:radam", "timm:rmsprop", "timm:sgd",
]
# fmt: on
TIMM_OPTIMIZER_NAMES: tuple[str, ...] = get_args(TimmOptimizerName)

#: Learning rate used when ``lr=None``: the timm class's own default (timm's registry sets none), except where
#: noted. ``tests/integration/test_timm_optimizers.py`` holds each to 0.95 test accuracy on digits in 10 epochs.
TIMM_DEFAULT_LR: dict[str, float] = {
    "adabelief": 1e-3,
    "adafactorbv": 3e-3,  # class default 1.0 stayed at chance (0.10) on digits in 10 epochs; 3e-3 reached 0.989
    "adahessian": 0.1,
    "adamp": 1e-3,
    "adamuon": 1e-3,  # class default 2e-2; its step is scaled to match AdamW (adjust_lr_fn), so AdamW's rate
    "adamwlegacy": 1e-3,
    "adan": 1e-3,
    "adanw": 1e-3,
    "adopt": 1e-3,
    "adoptw": 1e-3,
    "kron": 1e-3,
    "kronw": 1e-3,
    "lamb": 1e-3,
    "lambc": 1e-3,
    "lambcw": 1e-3,
    "lambw": 1e-3,
    "laprop": 4e-4,
    "larc": 5e-2,  # see "lars"
    # Class default 1.0 stayed at chance (0.10) on digits: without weight decay LARS applies no trust ratio (timm
    # adapts only groups with weight_decay != 0 unless always_adapt) and runs as SGD with momentum 0.9, so the
    # "sgd" rate here. With weight_decay > 0 the weights' steps shrink by the trust ratio: raise lr then.
    "lars": 5e-2,
    "lion": 3e-4,  # class default 1e-4 reached 0.896 on digits in 10 epochs; Lion's authors advise 3-10x below AdamW
    "madgrad": 1e-2,
    "madgradw": 1e-2,
    "mars": 3e-3,
    "momentum": 5e-2,  # torch.optim.SGD: the "sgd" default here (SGD has no default rate)
    "nadamlegacy": 2e-3,
    "nadamuon": 1e-3,
    "nadamw": 1e-3,
    "nlarc": 5e-2,  # see "lars"
    "nlars": 5e-2,  # see "lars"
    "nmuon": 1e-3,
    "novograd": 1e-3,
    "novogradw": 1e-3,
    "radabelief": 1e-3,
    "radamlegacy": 2e-3,  # class default 1e-3 reached 0.941 on digits in 10 epochs; 2e-3 reached 0.974
    "radamw": 1e-2,  # torch.optim.RAdam: the "radam" default here
    "rmsproptf": 1e-3,  # class default 1e-2 reached 0.796 on digits in 10 epochs; 1e-3 reached 0.974
    "rmsproptfw": 1e-3,  # as "rmsproptf"
    "sgdp": 5e-2,  # SGD with momentum (the class has no default rate): the "sgd" default here
    "sgdw": 5e-2,  # SGD with momentum (class default 1e-3): the "sgd" default here
    # timm's names for torch classes (or timm's own of the same name) take the torch defaults here
    "timm:adadelta": 1.0,
    "timm:adafactor": 1e-2,
    "timm:adagrad": 1e-2,
    "timm:adam": 1e-3,
    "timm:adamax": 2e-3,
    "timm:adamw": 1e-3,
    "timm:muon": 1e-3,  # as "muon" (class default 2e-2): both scale the step to match AdamW's
    "timm:nadam": 2e-3,
    "timm:radam": 1e-2,
    "timm:rmsprop": 1e-3,
    "timm:sgd": 5e-2,
}
check_registry("TIMM_DEFAULT_LR", TIMM_DEFAULT_LR, TIMM_OPTIMIZER_NAMES)

_MUONS = ("timm:muon", "nmuon", "adamuon", "nadamuon")


def timm_name(name: str) -> str:
    """The name timm's factory knows for one of :data:`TIMM_OPTIMIZER_NAMES` (the ``"timm:"`` prefix dropped).

    Example:
        >>> timm_name("timm:adamw"), timm_name("lion")
        ('adamw', 'lion')
    """
    return name.removeprefix(PREFIX)


def build_timm_optimizer(
    name: str,
    module: nn.Module,
    lr: float | None = None,
    weight_decay: float = 0.0,
    decay_all: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Optimizer:
    """Build one of timm's optimizers by name for the trainable parameters of ``module``.

    The groups are :func:`~lightning_cnn.optim.param_groups` (weights decay; biases and norms do not, unless
    ``decay_all``). timm's Muon family (``"timm:muon"``, ``"nmuon"``, ``"adamuon"``, ``"nadamuon"``)
    orthogonalizes every 2-D and conv weight (conv filters flattened to matrices) and sends 1-D tensors and the
    output layer to its AdamW fallback.

    Args:
        name: one of :data:`TIMM_OPTIMIZER_NAMES`.
        module: the network whose parameters are optimized.
        lr: learning rate; ``None`` takes :data:`TIMM_DEFAULT_LR`.
        weight_decay: decay of weights (not of biases and norms, unless ``decay_all``).
        decay_all: decay every parameter.
        options: further keyword arguments of the timm optimizer (``betas``, ``caution``, ...).

    Raises:
        ValueError: for an unknown name, or ``"adahessian"``.

    Example:
        >>> opt = build_timm_optimizer("lion", nn.Linear(3, 2), weight_decay=0.1)
        >>> type(opt).__name__, [g["weight_decay"] for g in opt.param_groups], opt.defaults["lr"]
        ('Lion', [0.1, 0.0], 0.0003)
    """
    check_choice("optimizer", name, TIMM_OPTIMIZER_NAMES)
    lr = TIMM_DEFAULT_LR[name] if lr is None else lr
    check_positive("lr", lr)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    if name == "adahessian":
        raise ValueError(
            "optimizer='adahessian' needs every backward pass to keep its graph (loss.backward(create_graph=True))"
            " for Hessian-vector products, which Lightning's training step does not do; use optimizer='adan' or"
            " 'adabelief' instead."
        )
    groups = param_groups(module, weight_decay, decay_all)
    if name in _MUONS:
        # As this project's "muon": the classifier's output layer goes to the AdamW fallback.
        out = output_layer(module)
        head = {id(p) for p in out.parameters()} if out is not None else set()
        split = []
        for g in groups:
            split.append({**g, "params": [p for p in g["params"] if id(p) not in head]})
            split.append({**g, "params": [p for p in g["params"] if id(p) in head], "use_fallback": True})
        groups = [g for g in split if g["params"]]
    from timm.optim import create_optimizer_v2  # imported here: only a timm optimizer loads timm.optim

    return create_optimizer_v2(groups, opt=timm_name(name), lr=lr, weight_decay=weight_decay, **dict(options or {}))
