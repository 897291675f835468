"""TTAModel: a plain nn.Module that runs K views of a batch and merges them, without Lightning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_cnn.callbacks.tta import TestTimeAugmentation
from lightning_cnn.functional import merge_log_probs
from lightning_cnn.tta import TTAModel, is_dropout, make_views


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5)).eval()


def test_forward_merges_the_views_logits_and_equals_the_callback():
    model, x = _model(), torch.randn(3, 1, 6, 6)
    tta = TTAModel(model, views=("flips", "zoom_in"), merge="gmean")
    stacked = tta.view_logits(x)
    assert stacked.shape == (4, 3, 5) and tta.num_views == 4
    torch.testing.assert_close(tta(x), merge_log_probs(stacked, "gmean"))
    callback = TestTimeAugmentation(views=("flips", "zoom_in"), merge="gmean")
    torch.testing.assert_close(callback.merged_log_probs(model, x), tta(x))
    torch.testing.assert_close(tta(x).exp().sum(-1), torch.ones(3))


def test_built_views_and_names_give_the_same_model():
    model, x = _model(), torch.randn(2, 1, 6, 6)
    by_name = TTAModel(model, views=("d4",), batched=True, max_batch=5)
    built = TTAModel(model, views=make_views(["d4"]), batched=False)
    torch.testing.assert_close(by_name.view_logits(x), built.view_logits(x))


def test_it_is_a_module_that_moves_and_saves_with_its_model():
    tta = TTAModel(_model())
    assert isinstance(tta, nn.Module)
    assert set(tta.state_dict()) == {f"model.{k}" for k in tta.model.state_dict()}


def test_monte_carlo_dropout_switches_only_dropout_layers_and_switches_them_back():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 3)).eval()
    x = torch.randn(4, 1, 4, 4)
    tta = TTAModel(net, views=("identity",), mc_dropout=3)
    a = tta.view_logits(x, seed=0)
    assert a.shape == (3, 4, 3) and not torch.allclose(a[0], a[1])
    assert torch.equal(a, tta.view_logits(x, seed=0))
    assert not any(m.training for m in net.modules())
    assert is_dropout(net[2]) and not is_dropout(net[3])


def test_bad_arguments_raise_as_the_callback_does():
    with pytest.raises(ValueError, match="Expected merge to be one of"):
        TTAModel(_model(), merge="average")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected random_weight to be in \[0, 1\], but got 2"):
        TTAModel(_model(), random_weight=2)
    with pytest.raises(RuntimeError, match="random_passes needs an augmentation"):
        TTAModel(_model(), random_passes=1)(torch.randn(1, 1, 6, 6))
