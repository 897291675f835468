"""Plain PyTorch building blocks (no Lightning): layer factories, regularizers, init schemes."""

from lightning_cnn.nn.activations import ACTIVATION_NAMES, ACTIVATIONS, ActivationName, create_activation
from lightning_cnn.nn.blocks import ConvBlock, conv_padding
from lightning_cnn.nn.init import (
    INIT_NAMES,
    INITS,
    NONLINEARITIES,
    NONLINEARITY_NAMES,
    InitName,
    NonlinearityName,
    gain_nonlinearity,
    init_weights,
)
from lightning_cnn.nn.norms import NORM_NAMES, NORMS, NormName, create_norm
from lightning_cnn.nn.pooling import (
    GLOBAL_POOL_NAMES,
    GLOBAL_POOLS,
    POOL_NAMES,
    POOLS,
    FractionalMaxPool,
    GlobalPoolName,
    PoolName,
    create_global_pool,
    create_pool,
)
from lightning_cnn.nn.regularization import DropConnectLinear, StochasticDepth

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "GLOBAL_POOLS",
    "GLOBAL_POOL_NAMES",
    "INITS",
    "INIT_NAMES",
    "NONLINEARITIES",
    "NONLINEARITY_NAMES",
    "NORMS",
    "NORM_NAMES",
    "POOLS",
    "POOL_NAMES",
    "ActivationName",
    "ConvBlock",
    "DropConnectLinear",
    "FractionalMaxPool",
    "GlobalPoolName",
    "InitName",
    "NonlinearityName",
    "NormName",
    "PoolName",
    "StochasticDepth",
    "conv_padding",
    "create_activation",
    "create_global_pool",
    "create_norm",
    "create_pool",
    "gain_nonlinearity",
    "init_weights",
]
