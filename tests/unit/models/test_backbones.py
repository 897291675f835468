"""timm backbones by name."""

from __future__ import annotations

from lightning_cnn.models.backbones import resolve_backbone


def test_resolve_backbone_accepts_known_names():
    assert resolve_backbone("efficientnet_lite0") == "efficientnet_lite0"
