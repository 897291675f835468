"""Optimizers and learning-rate schedulers by name (plain PyTorch, no Lightning).

- :mod:`~lightning_cnn.optim.optimizers`: every :mod:`torch.optim` algorithm by name, default learning
  rates, :func:`build_optimizer`.
- :mod:`~lightning_cnn.optim.timm_optimizers`: timm's optimizers by name (Lion, LAMB, LARS, Adan, ADOPT, ...);
  timm loads only when one is built.
- :mod:`~lightning_cnn.optim.layer_decay`: layer-wise learning-rate decay, :func:`scale_param_groups`.
- :mod:`~lightning_cnn.optim.param_groups`: no weight decay on biases and normalization parameters.
- :mod:`~lightning_cnn.optim.muon`: :class:`MuonWithAdamW`; :mod:`~lightning_cnn.optim.lbfgs`: :class:`L2LBFGS`.
- :mod:`~lightning_cnn.optim.schedulers`: schedulers by name, :class:`WarmupReduceLROnPlateau`,
  :func:`build_scheduler`.
"""

from lightning_cnn.optim.layer_decay import layer_decay_scales, scale_param_groups
from lightning_cnn.optim.lbfgs import L2LBFGS
from lightning_cnn.optim.muon import MuonWithAdamW
from lightning_cnn.optim.optimizers import (
    DEFAULT_LR,
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    TORCH_OPTIMIZER_NAMES,
    OptimizerName,
    TorchOptimizerName,
    build_optimizer,
)
from lightning_cnn.optim.param_groups import output_layer, param_groups
from lightning_cnn.optim.schedulers import (
    LENGTH_OPTIONS,
    SCHEDULER_NAMES,
    SCHEDULERS,
    SchedulerName,
    WarmupReduceLROnPlateau,
    build_scheduler,
)
from lightning_cnn.optim.timm_optimizers import TIMM_DEFAULT_LR, TIMM_OPTIMIZER_NAMES, TimmOptimizerName

__all__ = [
    "DEFAULT_LR",
    "L2LBFGS",
    "LENGTH_OPTIONS",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "SCHEDULERS",
    "SCHEDULER_NAMES",
    "TIMM_DEFAULT_LR",
    "TIMM_OPTIMIZER_NAMES",
    "TORCH_OPTIMIZER_NAMES",
    "MuonWithAdamW",
    "OptimizerName",
    "SchedulerName",
    "TimmOptimizerName",
    "TorchOptimizerName",
    "WarmupReduceLROnPlateau",
    "build_optimizer",
    "build_scheduler",
    "layer_decay_scales",
    "output_layer",
    "param_groups",
    "scale_param_groups",
]
