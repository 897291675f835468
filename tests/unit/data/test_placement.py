"""Where augmentation runs: "auto" picks the device or the loader workers by accelerator, size and workers."""

from __future__ import annotations

from lightning_cnn.data.placement import resolve_augment_on


def test_auto_picks_by_device_and_size():
    assert resolve_augment_on("auto", "cpu", 32, 2) == "device"
    assert resolve_augment_on("auto", "cpu", 224, 2) == "cpu"
    assert resolve_augment_on("auto", "cpu", 224, 0) == "device"  # no workers to run it in
    assert resolve_augment_on("auto", "cuda", 224, 8) == "device"
    assert resolve_augment_on("cpu", "cuda", 32, 2) == "cpu"
