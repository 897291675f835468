"""Weight initialization schemes by name."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from lightning_cnn._utils.validation import check_choice

__all__ = [
    "INITS",
    "INIT_NAMES",
    "NONLINEARITIES",
    "NONLINEARITY_NAMES",
    "InitName",
    "NonlinearityName",
    "gain_nonlinearity",
    "init_weights",
]

InitName = Literal[
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "normal"
]
INIT_NAMES: tuple[str, ...] = get_args(InitName)
INITS = INIT_NAMES

#: Names :func:`torch.nn.init.calculate_gain` knows, for ``init_weights(nonlinearity=...)``.
NonlinearityName = Literal["linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]
NONLINEARITY_NAMES: tuple[str, ...] = get_args(NonlinearityName)
NONLINEARITIES = NONLINEARITY_NAMES

_GAIN_OF_ACTIVATION = {
    "identity": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "leaky_relu": "leaky_relu",
    "prelu": "leaky_relu",
    # SELU self-normalizes with weights of variance 1 / fan_in (gain 1): PyTorch's "selu" gain (3/4) shrinks them.
    "selu": "linear",
}


def gain_nonlinearity(activation: str) -> str:
    """The :data:`NONLINEARITIES` name whose gain suits an activation of :data:`~lightning_cnn.nn.ACTIVATIONS`.

    ReLU-like activations (``"relu"``, ``"elu"``, ``"gelu"``, ``"silu"``, ...) get ``"relu"``. ``"selu"`` gets
    ``"linear"`` (weights of variance ``1 / fan_in``, which SELU's self-normalization needs, as PyTorch
    recommends), not :func:`torch.nn.init.calculate_gain`'s ``"selu"`` gain of 3/4, which shrinks the activations
    layer by layer.

    Example:
        >>> gain_nonlinearity("tanh"), gain_nonlinearity("gelu"), gain_nonlinearity("identity")
        ('tanh', 'relu', 'linear')
        >>> gain_nonlinearity("selu")
        'linear'
    """
    return _GAIN_OF_ACTIVATION.get(activation, "relu")


def _init_weight(w: torch.Tensor, scheme: str, nonlinearity: str) -> None:
    gain = nn.init.calculate_gain(nonlinearity)  # type: ignore[arg-type]
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=gain)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(w, gain=gain)
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity)  # type: ignore[arg-type]
    elif scheme == "kaiming_normal":
        nn.init.kaiming_normal_(w, nonlinearity=nonlinearity)  # type: ignore[arg-type]
    elif scheme == "orthogonal":
        nn.init.orthogonal_(w, gain=gain)
    else:  # "normal"
        nn.init.normal_(w, 0.0, 1.0)


def init_weights(module: nn.Module, scheme: str = "kaiming_normal", nonlinearity: str = "relu") -> nn.Module:
    """Initialize every convolution and linear layer of ``module`` in place, by name.

    Weights follow ``scheme``; biases become zero; normalization layers get weight 1 and bias 0.
    ``"default"`` keeps PyTorch's own initialization untouched. The Xavier and orthogonal schemes are
    scaled by the gain of ``nonlinearity`` (:func:`torch.nn.init.calculate_gain`: 1 for ``"linear"``,
    5/3 for ``"tanh"``, √2 for ``"relu"``; ``"selu"`` takes the gain of ``"linear"``, see
    :func:`gain_nonlinearity`), and the Kaiming schemes use it for their fan-in rule, so the
    variance of the activations stays about constant through a deep stack. ``"normal"`` draws N(0, 1): a
    deliberately badly scaled scheme, kept to show why scaled schemes matter.

    Args:
        module: the network to initialize.
        scheme: one of :data:`INITS`.
        nonlinearity: the activation between the layers, one of :data:`NONLINEARITIES`.

    Raises:
        ValueError: for an unknown scheme or nonlinearity; the message lists the valid ones.

    Example:
        >>> layer = init_weights(nn.Linear(4, 3), "orthogonal", nonlinearity="linear")
        >>> torch.allclose(layer.weight @ layer.weight.T, torch.eye(3), atol=1e-5)
        True
    """
    check_choice("init", scheme, INITS)
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if scheme == "default":
        return module
    nonlinearity = gain_nonlinearity(nonlinearity) if nonlinearity == "selu" else nonlinearity
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            _init_weight(m.weight, scheme, nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
