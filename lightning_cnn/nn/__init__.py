"""Plain PyTorch building blocks (no Lightning): layer factories, regularizers, init schemes."""

from lightning_cnn.nn.activations import ACTIVATIONS, create_activation
from lightning_cnn.nn.blocks import ConvBlock, conv_padding
from lightning_cnn.nn.init import INITS, NONLINEARITIES, gain_nonlinearity, init_weights
from lightning_cnn.nn.norms import NORMS, create_norm
from lightning_cnn.nn.pooling import GLOBAL_POOLS, POOLS, FractionalMaxPool, create_global_pool, create_pool
from lightning_cnn.nn.regularization import DropConnectLinear, StochasticDepth

__all__ = [
    "ACTIVATIONS",
    "GLOBAL_POOLS",
    "INITS",
    "NONLINEARITIES",
    "NORMS",
    "POOLS",
    "ConvBlock",
    "DropConnectLinear",
    "FractionalMaxPool",
    "StochasticDepth",
    "conv_padding",
    "create_activation",
    "create_global_pool",
    "create_norm",
    "create_pool",
    "gain_nonlinearity",
    "init_weights",
]
