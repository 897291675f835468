"""MixUp and CutMix with per-sample draws: the images and targets they make, and the draws' distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_cnn.augment.mix import BatchMix


def constant_images(n: int, size: int = 8) -> torch.Tensor:
    """Image i is filled with the value i + 1: every pixel says which image it came from."""
    return torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, size, size).clone()


def test_mixup_blends_each_sample_with_its_neighbour_by_its_own_weight():
    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 5, (16,))
    mix = BatchMix(mixup_alpha=0.4)
    params = mix.make_params(16, 8, 8, np.random.default_rng(0))
    images, targets = mix.transform(x, torch.nn.functional.one_hot(y, 5).float(), params)
    lam = params[:, 0]
    assert len(set(lam.tolist())) == 16  # every sample its own weight
    neighbour = torch.cat([x[-1:], x[:-1]])
    torch.testing.assert_close(images, lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * neighbour)
    expected = torch.zeros(16, 5)
    for i in range(16):  # an independent reference, one sample at a time
        expected[i, y[i]] += lam[i]
        expected[i, y[i - 1]] += 1 - lam[i]
    torch.testing.assert_close(targets, expected)


def test_cutmix_pastes_a_box_of_the_neighbour_and_weights_the_target_by_the_area_kept():
    n, size = 32, 8
    x, y = constant_images(n, size), torch.arange(n) % 10
    images, targets = BatchMix(cutmix_alpha=1.0)(x, y, 10, np.random.default_rng(1))
    boxes = set()
    for i in range(n):
        own = images[i] == i + 1
        from_neighbour = images[i] == ((i - 1) % n) + 1
        assert bool((own | from_neighbour).all())  # every pixel is exactly one of the two images
        pasted = from_neighbour[0].nonzero()
        if len(pasted):
            (top, left), (bottom, right) = pasted.min(0).values.tolist(), pasted.max(0).values.tolist()
            assert len(pasted) == (bottom - top + 1) * (right - left + 1)  # a rectangle
            boxes.add((top, bottom, left, right))
        kept = float(own[0].float().mean())
        if y[i] != y[i - 1]:
            assert float(targets[i, y[i]]) == pytest.approx(kept)
            assert float(targets[i, y[i - 1]]) == pytest.approx(1 - kept)
    assert len(boxes) > 10  # a box of its own for each sample


def test_samples_left_unmixed_keep_their_image_bit_for_bit_and_a_one_hot_target():
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    images, targets = BatchMix(mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.5)(x, y, 10, np.random.default_rng(2))
    unmixed = (targets.max(1).values == 1).nonzero().squeeze(1)
    assert 15 < len(unmixed) < 50  # about half the samples (a neighbour of the same class also gives one-hot)
    same_class = y == torch.roll(y, 1)
    for i in unmixed.tolist():
        assert torch.equal(images[i], x[i]) or bool(same_class[i])
    none = BatchMix(mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.0)(x, y, 10, np.random.default_rng(2))
    assert torch.equal(none[0], x) and torch.equal(none[1], torch.nn.functional.one_hot(y, 10).float())


@pytest.mark.parametrize(("switch", "cut_share"), [(0.0, 0.0), (1.0, 1.0), (0.3, 0.3)])
def test_switch_prob_is_the_share_of_cutmix_among_mixed_samples(switch, cut_share):
    params = BatchMix(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=switch).make_params(
        4000, 16, 16, np.random.default_rng(3)
    )
    assert float(params[:, 1].mean()) == pytest.approx(cut_share, abs=0.03)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_mixup_weights_follow_beta_alpha_alpha(alpha):
    lam = BatchMix(mixup_alpha=alpha).make_params(20000, 8, 8, np.random.default_rng(4))[:, 0].double()
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(lam.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)


def test_cutmix_kept_area_follows_beta_on_a_large_image():
    params = BatchMix(cutmix_alpha=1.0).make_params(20000, 224, 224, np.random.default_rng(5))
    kept = params[:, 0].double()  # Beta(1, 1) is uniform; clipping at the borders only keeps more
    assert 0.5 < float(kept.mean()) < 0.7
    area = (params[:, 3] - params[:, 2]) * (params[:, 5] - params[:, 4]) / 224**2
    torch.testing.assert_close(kept, 1 - area.double(), atol=1e-6, rtol=0)


def test_the_same_generator_state_draws_the_same_and_the_input_is_not_modified():
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 3, (8,))
    before = x.clone()
    mix = BatchMix(mixup_alpha=0.2, cutmix_alpha=1.0)
    a = mix(x, y, 3, np.random.default_rng([7, 0, 5]))
    b = mix(x, y, 3, np.random.default_rng([7, 0, 5]))
    c = mix(x, y, 3, np.random.default_rng([7, 1, 5]))  # another rank draws otherwise
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    assert torch.equal(x, before)


def test_float_targets_are_mixed_as_they_are():
    x = torch.rand(4, 1, 4, 4)
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])  # multi-label
    mix = BatchMix(mixup_alpha=1.0)
    params = mix.make_params(4, 4, 4, np.random.default_rng(0))
    _, targets = mix.transform(x, y, params)
    lam = params[:, :1]
    torch.testing.assert_close(targets, lam * y + (1 - lam) * torch.roll(y, 1, 0))
    assert mix(x, y, 3, np.random.default_rng(0))[1].shape == (4, 3)


def test_disabled_mixing_says_so():
    assert not BatchMix().enabled
    assert not BatchMix(mixup_alpha=1.0, prob=0.0).enabled
    assert BatchMix(cutmix_alpha=1.0).enabled


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"mixup_alpha": -0.2}, ValueError, "Expected mixup_alpha to be >= 0, but got -0.2."),
        ({"cutmix_alpha": float("inf")}, ValueError, "Expected cutmix_alpha to be a finite number >= 0, but got inf."),
        ({"prob": 1.5}, ValueError, "Expected mix_prob to be in [0, 1], but got 1.5."),
        ({"switch_prob": -0.1}, ValueError, "Expected mix_switch_prob to be in [0, 1], but got -0.1."),
        ({"mixup_alpha": "0.2"}, TypeError, "Expected mixup_alpha to be a number, but got str '0.2'."),
    ],
)
def test_bad_options_are_refused(options, error, message):
    with pytest.raises(error) as err:
        BatchMix(**options)
    assert str(err.value) == message


def test_given_params_mix_as_the_generator_that_drew_them():
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 4, (8,))
    mix = BatchMix(mixup_alpha=0.4, cutmix_alpha=1.0)
    drawn = mix(x, y, 4, np.random.default_rng(7))
    given = mix(x, y, 4, params=mix.make_params(8, 8, 8, np.random.default_rng(7)))
    assert all(torch.equal(a, b) for a, b in zip(drawn, given, strict=True))
    with pytest.raises(ValueError, match=r"generator \(rng\) or drawn params"):
        mix(x, y, 4)
