"""Batched augmentation: per-sample parameters, no mutation, identity at p=0, rates, specs and their errors."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn.augment import (
    AUGMENTATIONS,
    BatchAugmentation,
    ColorJitter,
    HorizontalFlip,
    RandomAffine,
    RandomErasing,
    RandomRotation,
    VerticalFlip,
    build_augmentation,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _asymmetric(n: int, c: int = 3, size: int = 8) -> torch.Tensor:
    # Every image differs from its mirror images, so a flip is always visible.
    base = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size) / (size * size)
    return base.expand(n, c, size, size).clone()


@pytest.mark.parametrize("flip", [HorizontalFlip, VerticalFlip])
def test_flips_are_drawn_per_sample(flip):
    x = _asymmetric(64)
    y = flip(p=0.5)(x, generator=_gen(3))
    dim = -1 if flip is HorizontalFlip else -2
    flipped = (y == x.flip(dim)).flatten(1).all(1)
    kept = (y == x).flatten(1).all(1)
    assert torch.all(flipped ^ kept)  # each sample is exactly one of the two
    assert 0 < int(flipped.sum()) < 64  # neither all nor none


def test_observed_flip_rate_matches_p():
    x = _asymmetric(4000, c=1, size=4)
    for p in (0.1, 0.5, 0.9):
        y = HorizontalFlip(p)(x, generator=_gen(1))
        rate = (y == x.flip(-1)).flatten(1).all(1).float().mean().item()
        # 4000 Bernoulli draws: 5 standard deviations at p=0.5 is 0.04.
        assert abs(rate - p) < 0.04, (p, rate)


def test_geometric_parameters_differ_between_samples():
    x = torch.rand(1, 3, 16, 16).expand(32, 3, 16, 16).clone()
    y = RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5)(x, generator=_gen())
    distinct = {tuple(v.flatten().tolist()) for v in y}
    assert len(distinct) == 32


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_input_is_never_modified_and_shape_kept(name):
    x = torch.rand(16, 3, 12, 12)
    before = x.clone()
    aug = build_augmentation([name])
    y = aug(x, generator=_gen())
    assert torch.equal(x, before)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_p_zero_is_the_identity(name):
    x = torch.rand(16, 3, 12, 12)
    aug = build_augmentation({name: {"p": 0.0}})
    assert torch.equal(aug(x, generator=_gen()), x)


def test_rotation_by_90_degrees_matches_rot90():
    x = torch.rand(4, 1, 9, 9)
    rot = RandomRotation(90)
    params = rot.make_params(x, _gen())
    params["angle"] = torch.full((4,), 90.0)
    params["apply"] = torch.ones(4, dtype=torch.bool)
    y = rot.transform(x, params)
    expected = torch.rot90(x, k=-1, dims=(-2, -1))  # clockwise on screen (rows grow downwards)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


def test_consecutive_geometric_transforms_share_one_resampling(monkeypatch):
    calls = []
    real = torch.nn.functional.grid_sample

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", counting)
    aug = BatchAugmentation([RandomRotation(10), RandomAffine(0, (0.1, 0.1)), HorizontalFlip(0.5)])
    aug(torch.rand(8, 1, 8, 8), generator=_gen())
    assert len(calls) == 1


def test_same_generator_seed_repeats_and_other_seed_differs():
    x = torch.rand(8, 3, 16, 16)
    aug = build_augmentation("strong")
    a, b, c = aug(x, generator=_gen(5)), aug(x, generator=_gen(5)), aug(x, generator=_gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_color_jitter_keeps_range_and_grayscale_ignores_saturation():
    x = torch.rand(32, 3, 8, 8)
    y = ColorJitter(0.5, 0.5, 0.5, 0.2)(x, generator=_gen())
    assert y.min() >= 0 and y.max() <= 1
    g = torch.rand(8, 1, 8, 8)
    assert torch.equal(ColorJitter(0, 0, 0.9, 0.4)(g, generator=_gen()), g)


def test_random_erasing_sets_a_box_to_value():
    x = torch.ones(64, 1, 16, 16)
    y = RandomErasing(p=1.0, value=0.0)(x, generator=_gen())
    zeros = (y == 0).flatten(1).sum(1)
    assert torch.all(zeros > 0) and torch.all(zeros < 256)


def test_bad_batches_are_refused():
    with pytest.raises(TypeError, match="float image batch"):
        HorizontalFlip()(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        HorizontalFlip()(torch.zeros(1, 4, 4))
