"""The test-time augmentation callback: its arguments and its math, mostly without a Trainer."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from lightning_cnn.callbacks.tta import TestTimeAugmentation
from lightning_cnn.tta import VIEW_NAMES


def test_unknown_view_and_bad_amounts_raise():
    with pytest.raises(
        ValueError, match=r"Expected views to be one of .*'hflip'.*but got 'hlfip'. Did you mean 'hflip'"
    ):
        TestTimeAugmentation(views=("identity", "hlfip"))
    with pytest.raises(ValueError, match="Expected merge to be one of"):
        TestTimeAugmentation(merge="average")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Expected zoom to be in"):
        TestTimeAugmentation(views=("zoom_in",), zoom=1.5)
    with pytest.raises(TypeError, match="Expected shift to be an int, but got float 1.5."):
        TestTimeAugmentation(views=("shifts",), shift=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Expected stages to be one of"):
        TestTimeAugmentation(stages=("fit",))  # type: ignore[arg-type]
    assert set(VIEW_NAMES) >= {"five_crop", "ten_crop", "rot270"}


def _fixed_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5)).eval()


def test_mean_of_flips_equals_a_hand_computation():
    model, x = _fixed_model(), torch.randn(3, 1, 6, 6)
    tta = TestTimeAugmentation(views=("identity", "hflip", "vflip"), merge="mean")
    with torch.no_grad():
        expected = (model(x).softmax(-1) + model(x.flip(-1)).softmax(-1) + model(x.flip(-2)).softmax(-1)) / 3
    torch.testing.assert_close(tta.merged_log_probs(model, x).exp(), expected)


@pytest.mark.parametrize("max_batch", [None, 2, 3, 7, 100])
def test_batched_chunked_and_looped_forwards_agree(max_batch):
    model, x = _fixed_model(), torch.randn(4, 1, 6, 6)
    reference = TestTimeAugmentation(views=("d4",), batched=False).view_logits(model, x)
    assert reference.shape == (8, 4, 5)
    for batched in (True, False):
        tta = TestTimeAugmentation(views=("d4",), batched=batched, max_batch=max_batch)
        torch.testing.assert_close(tta.view_logits(model, x), reference)


def test_non_square_rotations_are_batched_by_shape():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.randn(2, 1, 4, 6)
    a = TestTimeAugmentation(views=("d4",), batched=True).view_logits(model, x)
    b = TestTimeAugmentation(views=("d4",), batched=False).view_logits(model, x)
    torch.testing.assert_close(a, b)


def test_monte_carlo_dropout_is_seeded_and_restores_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Dropout(0.5), nn.Linear(32, 3)).eval()
    x = torch.randn(5, 1, 4, 4)
    tta = TestTimeAugmentation(views=("identity",), mc_dropout=6)
    assert tta.num_views == 6
    a, b = tta.view_logits(model, x, seed=1), tta.view_logits(model, x, seed=1)
    assert a.shape == (6, 5, 3) and torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # dropout was on
    assert not torch.equal(a, tta.view_logits(model, x, seed=2))
    assert not model[2].training
    with torch.no_grad():
        plain = model(x)
    torch.testing.assert_close(TestTimeAugmentation(views=("identity",)).view_logits(model, x)[0], plain)


def test_callback_pickles_for_spawned_processes():
    tta = TestTimeAugmentation(views=("d4", "shifts", "ten_crop", "zoom_in"))
    clone = pickle.loads(pickle.dumps(tta))
    x = torch.randn(1, 1, 5, 5)
    for a, b in zip(tta.views, clone.views, strict=True):
        assert torch.equal(a(x), b(x))


def test_random_mode_blends_views_with_augmented_passes_as_computed_by_hand():
    import math

    from lightning_cnn.augment import build_augmentation

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()
    x = torch.randn(6, 1, 8, 8)
    tta = TestTimeAugmentation(views=("identity", "hflip"), random_passes=3, random_weight=0.25, augment="light")
    got = tta.merged_log_probs(net, x, seed=7)

    views = torch.stack([net(x).softmax(-1), net(x.flip(-1)).softmax(-1)]).mean(0)
    aug, gen = build_augmentation("light"), torch.Generator().manual_seed(7)
    augmented = torch.stack([net(aug(x, generator=gen)).softmax(-1) for _ in range(3)]).mean(0)
    torch.testing.assert_close(got.exp(), 0.25 * views + 0.75 * augmented, atol=1e-6, rtol=0)
    assert not torch.allclose(augmented, views)  # the passes really are augmented
    torch.testing.assert_close(tta.merged_log_probs(net, x, seed=7), got)  # seeded: repeatable
    plain = TestTimeAugmentation(views=("identity", "hflip"), random_passes=3, random_weight=1.0, augment="light")
    torch.testing.assert_close(plain.merged_log_probs(net, x, seed=7).exp(), views, atol=1e-6, rtol=0)
    assert math.isclose(float(got.exp().sum(-1).mean()), 1.0, abs_tol=1e-5)


def test_random_mode_needs_an_augmentation(fast_trainer):
    import lightning.pytorch as pl

    from lightning_cnn import DigitsDataModule, SimpleCNN

    with pytest.raises(ValueError, match=r"Expected random_weight to be in \[0, 1\], but got 1.5"):
        TestTimeAugmentation(random_passes=2, random_weight=1.5)
    tta = TestTimeAugmentation(random_passes=2)
    trainer = pl.Trainer(**fast_trainer, callbacks=[tta], limit_test_batches=1)
    with pytest.raises(ValueError, match="random_passes=2 replays the training augmentation, but the DataModule has"):
        trainer.test(SimpleCNN(channels=(4,)), DigitsDataModule())
    tta = TestTimeAugmentation(views=("identity",), random_passes=2)
    trainer = pl.Trainer(**fast_trainer, callbacks=[tta], limit_test_batches=2)
    result = trainer.test(SimpleCNN(channels=(4,)), DigitsDataModule(augment="light"), verbose=False)[0]
    assert 0.0 <= result["test/tta_acc"] <= 1.0 and result["test/tta_nll"] > 0
