"""Conv blocks: padding, strided downsampling, residual shortcuts, parameter count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.nn import (
    ConvBlock,
)


def test_conv_block_without_pooling_downsamples_by_a_strided_convolution():
    block = ConvBlock(1, 4, pool="none", convs=2)
    assert block.body[0].stride == (2, 2) and block.body[3].stride == (1, 1)
    assert isinstance(block.pool, nn.Identity)
    assert block(torch.zeros(2, 1, 8, 8)).shape == (2, 4, 4, 4)
    assert ConvBlock(1, 4, kernel_size=5, padding=0, pool="max")(torch.zeros(1, 1, 12, 12)).shape == (1, 4, 2, 2)


@pytest.mark.parametrize(("kernel_size", "padding"), [(3, "valid"), (3, 0), (5, 1), (4, 1), (3, 2)])
def test_residual_block_refuses_a_padding_that_changes_the_size(kernel_size, padding):
    message = (
        r"residual=True adds the block's input to its convolutions' output, so the padding must keep the size: "
        rf"padding='same' \(or kernel_size // 2 with an odd kernel_size\), but got padding={padding!r} "
        rf"with kernel_size={kernel_size}\."
    )
    with pytest.raises(ValueError, match=message):
        ConvBlock(4, 4, kernel_size=kernel_size, padding=padding, residual=True)
    with pytest.raises(ValueError, match=message):
        SimpleCNN(channels=(4,), kernel_size=kernel_size, padding=padding, residual=True)
    assert ConvBlock(4, 4, kernel_size=kernel_size, padding=padding)(torch.zeros(1, 4, 9, 9)).ndim == 4  # plain: fine


@pytest.mark.parametrize(
    ("kernel_size", "padding", "pool"),
    [(3, "same", "max"), (3, 1, "none"), (5, 2, "max"), (4, "same", "avg"), (1, "valid", "none"), (1, 0, "max")],
)
def test_residual_block_with_a_size_keeping_padding_runs(kernel_size, padding, pool):
    block = ConvBlock(2, 4, kernel_size=kernel_size, padding=padding, pool=pool, residual=True)
    assert block(torch.randn(2, 2, 9, 9)).shape == (2, 4, 5, 5)


def test_pool_none_with_an_even_kernel_names_the_pool_as_the_reason_for_stride_2():
    message = (
        r"padding='same' with an even kernel_size \(2\) needs stride 1, but pool='none' downsamples with a "
        r"stride-2 first convolution; use an odd kernel_size or another pool \('max', 'avg', 'fractional_max'\)\."
    )
    with pytest.raises(ValueError, match=message):
        SimpleCNN(kernel_size=2, pool="none")
    with pytest.raises(ValueError, match="needs stride 1, but got stride 2"):  # a stride the user asked for
        SimpleCNN(kernel_size=2, stride=2, pool="max")
    assert SimpleCNN(kernel_size=3, pool="none", channels=(4,))(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_parameter_count_of_a_reference_configuration_by_hand():
    model = SimpleCNN(num_classes=10, in_channels=1, channels=(8, 16), kernel_size=3, convs_per_block=2, hidden=(32,))
    # conv layers have no bias (BatchNorm follows); each BatchNorm2d has a weight and a bias per channel
    block1 = (1 * 8 * 3 * 3) + 2 * 8 + (8 * 8 * 3 * 3) + 2 * 8  # 72 + 16 + 576 + 16 = 680
    block2 = (8 * 16 * 3 * 3) + 2 * 16 + (16 * 16 * 3 * 3) + 2 * 16  # 1152 + 32 + 2304 + 32 = 3520
    head = (16 * 32 + 32) + (32 * 10 + 10)  # global average pool -> 16 features: 544 + 330 = 874
    assert block1 + block2 + head == 5074
    assert sum(p.numel() for p in model.parameters()) == 5074
    residual = SimpleCNN(channels=(8, 16), hidden=(32,), residual=True, activation="prelu")
    # + 1×1 projection shortcuts with BatchNorm: (1*8 + 2*8) + (8*16 + 2*16) = 24 + 160
    # + PReLU, one weight per use: 2 per block (after conv 1 and after the sum) + 1 in the head = 5
    assert sum(p.numel() for p in residual.parameters()) == 5074 + 24 + 160 + 5
