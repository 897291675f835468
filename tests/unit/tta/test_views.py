"""Test-time augmentation views: each does what its name says, and the exact ones invert."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lightning_cnn.tta import make_views

INVERTIBLE = ["identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "anti_transpose", "d4", "flips"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(1, 9), w=st.integers(1, 9), name=st.sampled_from(INVERTIBLE))
def test_each_invertible_view_then_its_inverse_is_the_identity(seed, h, w, name):
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed))
    before = x.clone()
    for view in make_views([name]):
        assert view.invertible
        assert torch.equal(view.inverse(view(x)), x), view.name
    assert torch.equal(x, before)  # no view mutates its input


def test_views_that_drop_pixels_have_no_inverse_and_keep_the_shape():
    x = torch.randn(2, 1, 8, 6)
    views = make_views(["shifts", "zoom_in", "zoom_out", "ten_crop"])
    assert len(views) == 5 + 2 + 10
    for view in views[1:]:
        assert not view.invertible
        assert view(x).shape == x.shape, view.name
        with pytest.raises(NotImplementedError, match="has no inverse"):
            view.inverse(x)


def test_views_do_what_their_names_say():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    by_name = {v.name: v for v in make_views(["d4", "shifts", "five_crop"], crop_fraction=2 / 3)}
    assert by_name["hflip"](x)[0, 0, 0].tolist() == [2, 1, 0]
    assert by_name["vflip"](x)[0, 0, :, 0].tolist() == [6, 3, 0]
    assert by_name["rot90"](x)[0, 0, 0].tolist() == [2, 5, 8]  # counter-clockwise
    assert by_name["anti_transpose"](x)[0, 0, 0].tolist() == [8, 5, 2]  # mirrored on the other diagonal
    assert make_views(["anti_transpose"])[0].name == "anti_transpose"  # by its own name, not only in d4
    assert by_name["shift_right"](x)[0, 0, 0].tolist() == [0, 0, 1]
    assert by_name["shift_down"](x)[0, 0, :, 2].tolist() == [0, 2, 5]
    assert by_name["shift_left"](x)[0, 0, 0].tolist() == [1, 2, 0]
    top_left = x[..., :2, :2]
    resized = nn.functional.interpolate(top_left, size=(3, 3), mode="bilinear", align_corners=False)
    assert torch.equal(by_name["crop_tl"](x), resized)
