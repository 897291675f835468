"""Activation layers by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from torch import nn

from lightning_cnn._utils.validation import check_choice, check_registry

__all__ = ["ACTIVATIONS", "ACTIVATION_NAMES", "ActivationName", "create_activation"]

# fmt: off
ActivationName = Literal[
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "hardswish", "softplus", "tanh", "sigmoid", "prelu", "identity",
]
# fmt: on
ACTIVATION_NAMES: tuple[str, ...] = get_args(ActivationName)

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "celu": lambda: nn.CELU(inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=True),
    "mish": lambda: nn.Mish(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "prelu": nn.PReLU,
    "identity": nn.Identity,
}
check_registry("ACTIVATIONS", ACTIVATIONS, ACTIVATION_NAMES)


def create_activation(name: str) -> nn.Module:
    """Build an activation layer from its name.

    Args:
        name: one of :data:`ACTIVATIONS` (``"relu"``, ``"gelu"``, ``"prelu"``, ...).

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.

    Example:
        >>> create_activation("leaky_relu")
        LeakyReLU(negative_slope=0.01, inplace=True)
    """
    return ACTIVATIONS[check_choice("activation", name, ACTIVATION_NAMES)]()
