"""SimpleCNN: a configurable stack of conv blocks and a fully connected head."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from lightning_cnn._utils.protocols import HasPreviewImages
from lightning_cnn._utils.validation import check_choice, check_positive, check_probability
from lightning_cnn.models.base import ClassifierModule
from lightning_cnn.nn import (
    ACTIVATION_NAMES,
    GLOBAL_POOL_NAMES,
    INIT_NAMES,
    NORM_NAMES,
    POOL_NAMES,
    ActivationName,
    ConvBlock,
    DropConnectLinear,
    GlobalPoolName,
    InitName,
    NormName,
    PoolName,
    create_activation,
    create_global_pool,
    gain_nonlinearity,
    init_weights,
)

__all__ = ["SimpleCNN"]


class SimpleCNN(ClassifierModule):
    """A CNN of conv blocks and a fully connected head, every choice an argument.

    ``len(channels)`` blocks, each of ``convs_per_block`` convolutions (conv → norm → activation) and a
    downsampling ``pool``; then global pooling and a head of ``hidden`` linear layers with activation and
    dropout. ``residual=True`` adds shortcuts around each block's convolutions, whose branches stochastic
    depth may drop (drop rate rising linearly with depth to ``stochastic_depth`` at the last block).
    ``drop_connect`` drops weights of the head's linear layers (not units, and not residual branches).

    Args:
        num_classes: number of classes.
        in_channels: channels of the input images.
        channels: output channels of each conv block.
        kernel_size: convolution kernel size.
        stride: stride of each block's first convolution.
        padding: int, ``"same"`` or ``"valid"``.
        convs_per_block: convolutions in each block.
        activation: nonlinearity by name.
        pool: downsampling after each block (``"none"``: a stride-2 first convolution instead).
        global_pool: ``"avg"``, ``"max"``, or ``"flatten"`` (needs ``input_size``).
        input_size: image height and width, needed only by ``global_pool="flatten"``.
        norm: normalization after each convolution.
        norm_groups: group count for ``norm="group"``.
        residual: shortcut connections around each block.
        dropout: dropout rate in the head.
        spatial_dropout: channel dropout rate after each conv block.
        drop_connect: DropConnect rate of the head's linear layers.
        stochastic_depth: drop rate of the last residual branch (needs ``residual``).
        hidden: widths of the hidden fully connected layers (empty: a linear classifier).
        init: weight initialization scheme by name, scaled for ``activation`` (see
            :func:`lightning_cnn.nn.init_weights`).
        kwargs: loss, optimizer, scheduler and metric options of :class:`ClassifierModule`.

    Raises:
        ValueError: for an unknown name or an out-of-range number; the message lists what is valid.

    Example:
        >>> model = SimpleCNN(num_classes=10, in_channels=1, channels=(8, 16), hidden=(32,))
        >>> model(torch.zeros(4, 1, 8, 8)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | Literal["same", "valid"] = "same",
        convs_per_block: int = 2,
        activation: ActivationName = "relu",
        pool: PoolName = "max",
        global_pool: GlobalPoolName = "avg",
        input_size: int | tuple[int, int] | None = None,
        norm: NormName = "batch",
        norm_groups: int = 8,
        residual: bool = False,
        dropout: float = 0.0,
        spatial_dropout: float = 0.0,
        drop_connect: float = 0.0,
        stochastic_depth: float = 0.0,
        hidden: tuple[int, ...] = (128,),
        init: InitName = "kaiming_normal",
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, **kwargs)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_choice("pool", pool, POOL_NAMES)
        check_choice("global_pool", global_pool, GLOBAL_POOL_NAMES)
        check_choice("norm", norm, NORM_NAMES)
        check_choice("init", init, INIT_NAMES)
        check_positive("in_channels", in_channels, integer=True)
        if not channels:
            raise ValueError("Expected channels to list at least one block width, but got an empty sequence.")
        for i, c in enumerate(channels):
            check_positive(f"channels[{i}]", c, integer=True)
        for i, h in enumerate(hidden):
            check_positive(f"hidden[{i}]", h, integer=True)
        for name, rate in (
            ("dropout", dropout),
            ("spatial_dropout", spatial_dropout),
            ("drop_connect", drop_connect),
            ("stochastic_depth", stochastic_depth),
        ):
            check_probability(name, rate)
        if stochastic_depth > 0 and not residual:
            raise ValueError(f"stochastic_depth={stochastic_depth} drops residual branches, so it needs residual=True.")
        if global_pool == "flatten" and input_size is None:
            raise ValueError("global_pool='flatten' needs input_size (the image height and width) to size the head.")

        blocks = []
        c_in = in_channels
        n = len(channels)
        for i, c_out in enumerate(channels):
            blocks.append(
                ConvBlock(
                    c_in,
                    c_out,
                    kernel_size=kernel_size,
                    stride=stride,
                    padding=padding,
                    convs=convs_per_block,
                    activation=activation,
                    norm=norm,
                    norm_groups=norm_groups,
                    pool=pool,
                    spatial_dropout=spatial_dropout,
                    residual=residual,
                    stochastic_depth=stochastic_depth * (i + 1) / n,
                )
            )
            c_in = c_out
        features = nn.Sequential(*blocks, create_global_pool(global_pool))
        width = c_in
        self._input_size: tuple[int, int] | None = None
        if input_size is not None:
            self._input_size = _pair("input_size", input_size)
            width = _fit_blocks(features, in_channels, self._input_size, "images of input_size", pool)
            if global_pool != "flatten":
                width = c_in

        def linear(a: int, b: int) -> nn.Module:
            return DropConnectLinear(a, b, p=drop_connect) if drop_connect > 0 else nn.Linear(a, b)

        head: list[nn.Module] = []
        for h_width in hidden:
            head += [nn.Dropout(dropout) if dropout > 0 else nn.Identity(), linear(width, h_width)]
            head.append(create_activation(activation))
            width = h_width
        head += [nn.Dropout(dropout) if dropout > 0 else nn.Identity(), linear(width, num_classes)]
        self.net = nn.Sequential()
        self.net.add_module("features", features)
        self.net.add_module("head", nn.Sequential(*head))
        init_weights(self.net, init, nonlinearity=gain_nonlinearity(activation))

    def setup(self, stage: str) -> None:
        """Check that the blocks fit the data's images (see :meth:`check_input_size`), then as the base class."""
        super().setup(stage)
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if not isinstance(dm, HasPreviewImages):
            return
        try:
            shape = tuple(dm.preview_images(1).shape[-2:])
        except Exception:  # the data's own errors come when its batches are built, where they name the file
            return
        self.check_input_size((int(shape[0]), int(shape[1])), f"{type(dm).__name__}'s")

    def check_input_size(self, size: tuple[int, int], whose: str = "the") -> None:
        """Refuse images the blocks do not fit: too small for a kernel, or 1 pixel before a block that downsamples.

        Runs one zero image through the convolution blocks. A block whose input is already 1 pixel high or wide
        convolves padding and pools nothing: the network is deeper than the images allow. With
        ``global_pool="flatten"``, the images must have the ``input_size`` the head was sized for.

        Args:
            size: image height and width.
            whose: who gives the images, for the message (``"DigitsDataModule's"``).

        Raises:
            ValueError: naming the block, the sizes and the depth that fits.
        """
        hp = self.hparams
        if self._input_size is not None and hp["global_pool"] == "flatten" and tuple(size) != self._input_size:
            raise ValueError(
                f"global_pool='flatten' sized the head for input_size={self._input_size}, but {whose} images are"
                f" {size[0]}x{size[1]}: build the model with input_size={tuple(size)}, or use global_pool='avg'."
            )
        features = self.net.features
        assert isinstance(features, nn.Sequential)
        _fit_blocks(features, hp["in_channels"], size, f"{whose} images", hp["pool"])


def _pair(argument: str, value: int | tuple[int, int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"Expected {argument} to be an int >= 1 or a pair of them (height, width), but got {value!r}.")
    return pair[0], pair[1]


def _fit_blocks(features: nn.Sequential, in_channels: int, size: tuple[int, int], what: str, pool: str) -> int:
    """Run a zero image of ``size`` through the blocks (and the global pool); return the features' width.

    Raises:
        ValueError: for a block the image is too small for, naming it and the depth that fits.
    """
    blocks = list(features)[:-1]
    param = next(features.parameters())
    x = torch.zeros(1, in_channels, *size, device=param.device, dtype=param.dtype)
    sizes = [f"{size[0]}x{size[1]}"]
    training = features.training
    features.eval()
    try:
        with torch.no_grad():
            for i, block in enumerate(blocks):
                h, w = x.shape[-2:]
                if i > 0 and min(h, w) == 1:
                    raise ValueError(
                        f"SimpleCNN has {len(blocks)} conv blocks (channels), but {what} {size[0]}x{size[1]} are"
                        f" {h}x{w} after {i} of them ({' -> '.join(sizes)}): block {i} would convolve 1-pixel maps"
                        f" and its downsampling (pool={pool!r}) would do nothing. Use at most {i} blocks, or larger"
                        " images (image_size=...)."
                    )
                try:
                    x = block(x)
                except RuntimeError as err:
                    raise ValueError(
                        f"SimpleCNN's conv block {i} does not fit {what} {size[0]}x{size[1]}: its input is {h}x{w}"
                        f" ({' -> '.join(sizes)}), too small for its convolutions (kernel_size, padding) or"
                        f" pooling. Use fewer blocks, padding='same', a smaller kernel_size or larger images."
                        f" ({str(err).splitlines()[0]})"
                    ) from None
                sizes.append(f"{x.shape[-2]}x{x.shape[-1]}")
            return int(features[-1](x).shape[1])
    finally:
        features.train(training)
