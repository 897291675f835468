"""Downsampling and global pooling, fractional max pooling included."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_cnn import SimpleCNN
from lightning_cnn.nn import (
    FractionalMaxPool,
    create_global_pool,
    create_pool,
)


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
