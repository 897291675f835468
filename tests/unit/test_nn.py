"""Building blocks: factories, pooling, DropConnect, stochastic depth, initialization, parameter count."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.nn import (
    ACTIVATIONS,
    GLOBAL_POOLS,
    NORMS,
    POOLS,
    ConvBlock,
    DropConnectLinear,
    FractionalMaxPool,
    StochasticDepth,
    create_activation,
    create_global_pool,
    create_norm,
    create_pool,
    gain_nonlinearity,
    init_weights,
)


@pytest.mark.parametrize(
    ("factory", "bad", "valid"),
    [
        (create_activation, "relux", ACTIVATIONS),
        (lambda n: create_norm(n, 8), "batchnorm", NORMS),
        (create_pool, "maxx", POOLS),
        (create_global_pool, "mean", GLOBAL_POOLS),
        (lambda n: init_weights(nn.Linear(2, 2), n), "xavier", ("xavier_uniform", "orthogonal", "default")),
    ],
)
def test_factories_reject_unknown_names_listing_the_valid_ones(factory, bad, valid):
    with pytest.raises(ValueError, match=f"but got {bad!r}") as err:
        factory(bad)
    assert all(repr(v) in str(err.value) for v in valid)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_builds_and_keeps_the_shape(name):
    x = torch.linspace(-3, 3, 24).reshape(2, 3, 2, 2)
    y = create_activation(name)(x.clone())
    assert y.shape == x.shape and torch.isfinite(y).all()
    if name != "identity":
        assert not torch.equal(y, x)  # a real nonlinearity changes the values


@pytest.mark.parametrize("name", NORMS)
def test_every_norm_normalizes_as_named(name):
    torch.manual_seed(0)
    x = torch.randn(4, 8, 5, 5) * 3 + 2
    y = create_norm(name, 8, groups=2)(x)
    if name == "batch":
        torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-5, rtol=0)
    elif name == "instance":
        torch.testing.assert_close(y.mean(dim=(2, 3)), torch.zeros(4, 8), atol=1e-5, rtol=0)
    elif name == "layer":
        torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    elif name == "group":
        torch.testing.assert_close(y.reshape(4, 2, -1).mean(-1), torch.zeros(4, 2), atol=1e-5, rtol=0)
    else:
        assert torch.equal(y, x)


def test_group_norm_needs_a_dividing_group_count():
    assert create_norm("group", 32, groups=4).num_groups == 4
    with pytest.raises(ValueError, match="Expected norm_groups to divide the channel count 12, but got 5"):
        create_norm("group", 12, groups=5)


@pytest.mark.parametrize("size", [7, 8, 9])
@pytest.mark.parametrize("name", ["max", "avg", "fractional_max"])
def test_pools_halve_rounding_up_on_odd_sizes(name, size):
    pool = create_pool(name)
    out = pool(torch.randn(2, 3, size, size + 2))
    assert out.shape == (2, 3, math.ceil(size / 2), math.ceil((size + 2) / 2))


def test_fractional_max_pool_is_random_in_training_and_fixed_in_evaluation():
    torch.manual_seed(0)
    pool = FractionalMaxPool()
    x = torch.randn(4, 16, 9, 9)
    assert not torch.equal(pool(x), pool(x))  # random regions per call in training
    pool.eval()
    first = pool(x)
    assert torch.equal(first, pool(x))
    # each output is the max of a window of the input: never larger than the global max of the map
    assert (first <= x.amax(dim=(2, 3), keepdim=True)).all()
    assert pool(torch.randn(1, 2, 1, 1)).shape == (1, 2, 1, 1)  # even a 1×1 map


def test_simple_cnn_with_fractional_pooling_runs_on_odd_inputs_and_is_deterministic_in_eval():
    model = SimpleCNN(channels=(4, 8), hidden=(8,), pool="fractional_max").eval()
    for size in (7, 9):
        x = torch.randn(3, 1, size, size)
        assert torch.equal(model(x), model(x))


def test_global_pools():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    torch.testing.assert_close(create_global_pool("avg")(x), x.mean(dim=(2, 3)))
    torch.testing.assert_close(create_global_pool("max")(x), x.amax(dim=(2, 3)))
    assert create_global_pool("flatten")(x).shape == (2, 12)


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


def test_drop_connect_at_eval_equals_linear_with_the_expected_weights():
    torch.manual_seed(0)
    layer = DropConnectLinear(6, 4, p=0.5)
    plain = nn.Linear(6, 4)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(5, 6)
    layer.eval()
    assert torch.equal(layer(x), plain(x)) and torch.equal(layer(x), layer(x))


def test_drop_connect_in_training_drops_weights_not_units():
    torch.manual_seed(0)
    layer = DropConnectLinear(3, 200, p=0.5, bias=False)
    e0 = torch.tensor([[1.0, 0.0, 0.0]])  # the output is the first weight column, masked and rescaled
    w = layer.weight[:, 0].detach()
    outs = torch.cat([layer(e0) for _ in range(400)]).detach()
    kept = outs != 0
    torch.testing.assert_close(outs[kept], (2 * w).expand_as(outs)[kept])  # kept weights scaled by 1/(1-p)
    assert 0.4 < kept.float().mean() < 0.6  # about half of the weights dropped
    assert 0.0 < kept.float().mean(0).min() and kept.float().mean(0).max() < 1.0  # not whole units
    torch.testing.assert_close(outs.mean(0), w, atol=0.3 * w.abs().max().item(), rtol=0)  # expectation


def test_stochastic_depth_drops_whole_samples_in_training_and_is_identity_in_eval():
    torch.manual_seed(0)
    sd = StochasticDepth(0.25)
    x = torch.ones(400, 2, 3, 3)
    y = sd(x)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()  # all or nothing per sample
    dropped = (per_sample == 0).all(1).float().mean().item()
    assert 0.15 < dropped < 0.35
    assert torch.equal(sd.eval()(x), x)


def test_simple_cnn_stochastic_depth_rises_linearly_with_depth_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    model = SimpleCNN(channels=(4, 8, 8, 8), hidden=(), residual=True, stochastic_depth=0.4, pool="none")
    rates = [block.drop_path.p for block in model.net.features[:4]]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4])
    x = torch.randn(16, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    for m in model.modules():  # freeze batch statistics' effect: compare only the random drops
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    assert not torch.equal(model(x), model(x))


def _stack_variance(init: str, activation: str, depth: int = 20, width: int = 256) -> list[float]:
    torch.manual_seed(0)
    layers = [nn.Linear(width, width) for _ in range(depth)]
    nonlinearity = "tanh" if activation == "tanh" else "linear"
    for layer in layers:
        init_weights(layer, init, nonlinearity=nonlinearity)
    act = torch.tanh if activation == "tanh" else (lambda t: t)
    h = act(torch.randn(1024, width))  # the stack starts after an activation, like any hidden layer
    variances = []
    with torch.no_grad():
        for layer in layers:
            z = layer(h)
            variances.append(z.var().item())  # pre-activation variance of each layer
            h = act(z)
    return variances


@pytest.mark.parametrize("activation", ["tanh", "identity"])
@pytest.mark.parametrize("init", ["xavier_uniform", "xavier_normal"])
def test_xavier_keeps_the_variance_while_unit_normal_explodes(init, activation):
    # the data have variance 1 (tanh'ed first for the tanh stack); the pre-activations of every layer of a
    # 20-deep, 256-wide stack stay within a factor 2 of that (Xavier scaled by the gain, 5/3 for tanh)
    good = _stack_variance(init, activation)
    assert all(0.5 < v < 2.0 for v in good), good
    bad = _stack_variance("normal", activation)  # N(0, 1): variance x256 per linear layer
    assert bad[0] > 100 and (bad[-1] > 100 or not math.isfinite(bad[-1]))


@pytest.mark.parametrize("init", ["kaiming_normal", "xavier_normal", "orthogonal"])
@pytest.mark.parametrize("by", ["gain_nonlinearity", "init_weights"])
def test_selu_stack_keeps_unit_variance_through_20_layers(init, by):
    torch.manual_seed(0)
    layers = [nn.Linear(256, 256) for _ in range(20)]
    nonlinearity = gain_nonlinearity("selu") if by == "gain_nonlinearity" else "selu"
    for layer in layers:
        init_weights(layer, init, nonlinearity=nonlinearity)
    h = torch.randn(2048, 256)  # SELU's fixed point: mean 0, variance 1
    variances = []
    with torch.no_grad():
        for layer in layers:
            h = torch.selu(layer(h))
            variances.append(h.var().item())
    assert all(0.7 < v < 1.3 for v in variances), variances  # the gain of 3/4 would give about 1e-5 at layer 20


def test_simple_cnn_with_selu_initializes_for_self_normalization():
    torch.manual_seed(0)
    model = SimpleCNN(channels=(4,), hidden=(256, 256), activation="selu", init="kaiming_normal")
    hidden = model.net.head[4]
    assert isinstance(hidden, nn.Linear) and hidden.weight.shape == (256, 256)
    assert hidden.weight.std().item() == pytest.approx(1 / 16, rel=0.05)  # variance 1 / fan_in (gain 1)


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
