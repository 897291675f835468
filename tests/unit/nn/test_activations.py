"""Layer factories by name: unknown names listed with the valid ones; every activation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_cnn.nn import (
    ACTIVATIONS,
    GLOBAL_POOLS,
    NORMS,
    POOLS,
    create_activation,
    create_global_pool,
    create_norm,
    create_pool,
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
