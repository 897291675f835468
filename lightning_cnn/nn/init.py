"""Weight initialization schemes by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lightning_cnn._validation import check_choice

__all__ = ["INITS", "init_weights"]


def _kaiming_uniform(w: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(w, nonlinearity="relu")


def _kaiming_normal(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")


_SCHEMES: dict[str, Callable[[torch.Tensor], object] | None] = {
    "default": None,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": _kaiming_uniform,
    "kaiming_normal": _kaiming_normal,
    "orthogonal": nn.init.orthogonal_,
    "normal": lambda w: nn.init.normal_(w, 0.0, 1.0),
}
INITS = tuple(_SCHEMES)


def init_weights(module: nn.Module, scheme: str = "kaiming_normal") -> nn.Module:
    """Initialize every convolution and linear layer of ``module`` in place, by name.

    Weights follow ``scheme``; biases become zero; normalization layers get weight 1 and bias 0.
    ``"default"`` keeps PyTorch's own initialization untouched. ``"normal"`` draws N(0, 1): a
    deliberately badly scaled scheme, kept to show why scaled schemes matter.

    Args:
        module: the network to initialize.
        scheme: one of :data:`INITS`.

    Raises:
        ValueError: for an unknown scheme; the message lists the valid ones.

    Example:
        >>> layer = init_weights(nn.Linear(4, 3), "orthogonal")
        >>> torch.allclose(layer.weight @ layer.weight.T, torch.eye(3), atol=1e-5)
        True
    """
    fn = _SCHEMES[check_choice("init", scheme, INITS)]
    if fn is None:
        return module
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            fn(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
