"""Augmentation specs: every preset builds and has a torchvision twin; bad specs fail with clear messages."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn.augment import PRESETS, HorizontalFlip, build_augmentation


def test_every_preset_and_the_torchvision_twin_run():
    x = torch.rand(4, 3, 16, 16)
    for name in PRESETS:
        aug = build_augmentation(name)
        assert aug is not None and aug(x).shape == x.shape
        assert aug.to_torchvision((16, 16))(x[0]).shape == x[0].shape
    assert build_augmentation("light").transforms[0].degrees > 0
    assert not any(isinstance(t, HorizontalFlip) for t in build_augmentation("light").transforms)


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("lite", ValueError, r"Expected augment to be a preset in \('light', .*but got 'lite'. Did you mean 'light'"),
        (["hflip", "rotate"], ValueError, r"to be one of \('hflip', .*but got 'rotate'. Did you mean 'rotation'"),
        ({"rotation": {"degree": 5}}, ValueError, r"Unknown option 'degree' of augmentation 'rotation' .*'degrees'"),
        ({"hflip": {"p": 1.5}}, ValueError, r"Augmentation 'hflip' in augment: Expected p to be in \[0, 1\]"),
        ({"affine": {"scale": [1.2, 0.8]}}, ValueError, r"Expected scale to be a pair with"),
        ({"rotation": 10}, TypeError, r"options of augmentation 'rotation' .* mapping"),
        (42, TypeError, r"Expected augment to be a preset name"),
    ],
)
def test_bad_specs_are_refused_with_clear_messages(spec, error, message):
    with pytest.raises(error, match=message):
        build_augmentation(spec)
