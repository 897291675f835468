"""A classifier learns its task from the data: multi-label data makes the loss, metrics and predictions per label."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_cnn import ArrayDataModule, SimpleCNN
from lightning_cnn.losses import multilabel_loss
from lightning_cnn.models.contract import InputContract, check_contract


def _multilabel_model(**kwargs) -> SimpleCNN:
    model = SimpleCNN(num_classes=3, channels=(4,), hidden=(), **kwargs)
    model.input_contract.learn({"normalize": "none", "in_channels": 1, "image_size": 8, "task": "multilabel"})
    return model


def test_the_default_loss_becomes_sigmoid_bce_and_the_metrics_multilabel():
    model = _multilabel_model()
    assert model.multilabel and model.built_task == "multiclass"  # learned, not yet adopted
    model.adopt_task()
    assert model.built_task == "multilabel"
    assert model.criterion is not None and model.criterion.name == "sigmoid_cross_entropy"
    assert sorted(model.val_metrics) == ["acc", "exact_match", "f1", "loss", "map"]
    logits, y = torch.randn(5, 3), torch.tensor([[1.0, 0.0, 1.0]] * 5)
    torch.testing.assert_close(model._loss(logits, y), F.binary_cross_entropy_with_logits(logits, y))


def test_predict_step_returns_per_label_sigmoid_probabilities():
    model = _multilabel_model().eval()
    x = torch.rand(4, 1, 8, 8)
    probs = model.predict_step((x, None), 0)
    torch.testing.assert_close(probs, model(x).sigmoid())
    assert not torch.allclose(probs.sum(-1), torch.ones(4))


def test_a_multiclass_model_is_unchanged():
    model = SimpleCNN(num_classes=3, channels=(4,), hidden=())
    model.adopt_task()
    assert model.criterion.name == "cross_entropy" and "nll" in model.val_metrics
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model.eval().predict_step((x,), 0).sum(-1), torch.ones(2))


def test_the_task_is_in_the_state_dict():
    model = _multilabel_model()
    restored = SimpleCNN(num_classes=3, channels=(4,), hidden=())
    assert not restored.multilabel
    restored.load_state_dict(model.state_dict())
    assert restored.multilabel and restored.input_contract.describe()["task"] == "multilabel"


def test_the_module_learns_the_task_from_an_array_datamodule():
    rng = np.random.default_rng(0)
    y = np.stack([np.arange(40) % 2, np.arange(40) // 20], 1)
    dm = ArrayDataModule(rng.random((40, 8, 8)).astype(np.float32), y, class_names=["odd", "big"])
    assert dm.task == "multilabel" and dm.num_classes == 2 and dm.class_names == ["odd", "big"]
    dm.setup("fit")
    _x0, y0 = dm.train_set[0]
    assert y0.dtype == torch.float32 and y0.shape == (2,)
    assert dm.input_contract()["task"] == "multilabel"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("cross_entropy", "sigmoid_cross_entropy"),
        ("sigmoid_cross_entropy", "sigmoid_cross_entropy"),
        ({"cross_entropy": 1.0, "sigmoid_cross_entropy": 0.5}, {"sigmoid_cross_entropy": 1.5}),
    ],
)
def test_multilabel_loss_maps_the_default(spec, expected):
    assert multilabel_loss(spec) == expected


@pytest.mark.parametrize("name", ["weighted_cross_entropy", "kl_div", "pseudo_huber", "l1", "mse"])
def test_multiclass_only_losses_are_refused_by_name(name):
    with pytest.raises(
        ValueError, match=re.escape(f"for multi-label data (a 0/1 label matrix [N, L]), but got {name!r}")
    ):
        multilabel_loss({"cross_entropy": 1.0, name: 1.0})


def test_a_multilabel_checkpoint_refuses_multiclass_data_by_the_task():
    contract = InputContract()
    contract.learn({"normalize": "none", "in_channels": 1, "class_names": ["a", "b"], "task": "multilabel"})
    with pytest.raises(
        ValueError, match="m.ckpt was trained on task='multilabel', but the data gives task='multiclass'"
    ):
        check_contract(contract, {"task": "multiclass"}, "m.ckpt", "the data")


def test_an_exported_multilabel_model_ends_in_a_sigmoid_per_label():
    from lightning_cnn.export import ExportedClassifier

    model = _multilabel_model().eval()
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ExportedClassifier(model)(x), model(x).sigmoid())
