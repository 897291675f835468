"""Convolution blocks: the repeated unit of :class:`lightning_cnn.SimpleCNN`."""

from __future__ import annotations

import torch
from torch import nn

from lightning_cnn._utils.validation import check_positive
from lightning_cnn.nn.activations import create_activation
from lightning_cnn.nn.norms import create_norm
from lightning_cnn.nn.pooling import POOLS, create_pool
from lightning_cnn.nn.regularization import StochasticDepth

__all__ = ["ConvBlock", "conv_padding"]


def conv_padding(kernel_size: int, stride: int, padding: int | str) -> int | str:
    """Resolve ``padding`` (an int, ``"same"`` or ``"valid"``) to what :class:`torch.nn.Conv2d` takes.

    ``"same"`` keeps the size at stride 1 and gives ``ceil(size / stride)`` for odd kernels at larger
    strides; PyTorch has no ``"same"`` for strided convolutions, so an odd kernel gets ``kernel_size // 2``.

    Example:
        >>> conv_padding(3, 2, "same"), conv_padding(5, 1, "valid"), conv_padding(3, 1, 2)
        (1, 0, 2)
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0
        if padding != "same":
            raise ValueError(f"Expected padding to be an int >= 0, 'same' or 'valid', but got {padding!r}.")
        if kernel_size % 2 == 1:
            return kernel_size // 2
        if stride == 1:
            return "same"
        raise ValueError(
            f"padding='same' with an even kernel_size ({kernel_size}) needs stride 1, but got stride {stride}."
        )
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"Expected padding to be an int >= 0, 'same' or 'valid', but got {padding!r}.")
    return padding


class ConvBlock(nn.Module):
    """``convs`` × (conv → norm → activation), an optional residual shortcut, then downsampling.

    The first convolution maps ``in_channels`` to ``out_channels`` with ``stride``; with ``pool="none"``
    it uses stride 2 and so downsamples by itself. With ``residual=True`` the convolutions form a branch
    added to a shortcut (a 1×1 convolution when the shape changes) before the last activation; that branch
    may be dropped per sample by stochastic depth. Spatial dropout (whole channels) follows the pooling.

    Args:
        in_channels: input channels.
        out_channels: output channels of every convolution.
        kernel_size: convolution kernel size.
        stride: stride of the first convolution.
        padding: int, ``"same"`` or ``"valid"``.
        convs: number of convolutions.
        activation: activation name.
        norm: normalization name.
        norm_groups: group count for ``norm="group"``.
        pool: downsampling after the block.
        spatial_dropout: channel dropout rate after the block.
        residual: add a shortcut around the convolutions (needs a padding that keeps the size).
        stochastic_depth: drop rate of the residual branch (needs ``residual``).

    Shape:
        - Input: ``[B, in_channels, H, W]``
        - Output: ``[B, out_channels, H', W']``

    Example:
        >>> block = ConvBlock(1, 8, pool="max")
        >>> block(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | str = "same",
        convs: int = 2,
        activation: str = "relu",
        norm: str = "batch",
        norm_groups: int = 8,
        pool: str = "max",
        spatial_dropout: float = 0.0,
        residual: bool = False,
        stochastic_depth: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("stride", stride), ("convs_per_block", convs)):
            check_positive(name, value)
        if stochastic_depth > 0 and not residual:
            raise ValueError(f"stochastic_depth={stochastic_depth} drops residual branches, so it needs residual=True.")
        resolved = conv_padding(kernel_size, 1, padding)
        if residual and resolved != "same" and not (kernel_size % 2 == 1 and resolved == kernel_size // 2):
            raise ValueError(
                "residual=True adds the block's input to its convolutions' output, so the padding must keep the"
                f" size: padding='same' (or kernel_size // 2 with an odd kernel_size), but got padding={padding!r}"
                f" with kernel_size={kernel_size}."
            )
        first_stride = max(stride, 2) if pool == "none" else stride
        if pool == "none" and stride < 2 and padding == "same" and kernel_size % 2 == 0:
            others = tuple(p for p in POOLS if p != "none")
            raise ValueError(
                f"padding='same' with an even kernel_size ({kernel_size}) needs stride 1, but pool='none' downsamples"
                f" with a stride-2 first convolution; use an odd kernel_size or another pool {others}."
            )
        layers: list[nn.Module] = []
        for i in range(convs):
            s = first_stride if i == 0 else 1
            c_in = in_channels if i == 0 else out_channels
            layers.append(
                nn.Conv2d(
                    c_in, out_channels, kernel_size, s, conv_padding(kernel_size, s, padding), bias=norm == "none"
                )
            )
            layers.append(create_norm(norm, out_channels, norm_groups))
            if not (residual and i == convs - 1):
                layers.append(create_activation(activation))
        self.body = nn.Sequential(*layers)
        self.residual = residual
        if residual:
            needs_projection = in_channels != out_channels or first_stride != 1
            self.shortcut: nn.Module = (
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, first_stride, bias=norm == "none"),
                    create_norm(norm, out_channels, norm_groups),
                )
                if needs_projection
                else nn.Identity()
            )
            self.drop_path = StochasticDepth(stochastic_depth)
            self.out_act = create_activation(activation)
        self.pool = create_pool(pool)
        self.dropout = nn.Dropout2d(spatial_dropout) if spatial_dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            x = self.out_act(self.shortcut(x) + self.drop_path(self.body(x)))
        else:
            x = self.body(x)
        return self.dropout(self.pool(x))
