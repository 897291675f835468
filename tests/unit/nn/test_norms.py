"""Normalization layers by name."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn.nn import (
    NORMS,
    create_norm,
)


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
