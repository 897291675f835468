"""Exported graphs (ONNX Runtime, TorchScript, torch.export) give eager PyTorch's probabilities on raw digits."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from lightning_cnn import DigitsDataModule, SimpleCNN, TransferClassifier
from lightning_cnn.export import ExportedClassifier, export_classifier

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _trained(model, fast_trainer) -> torch.nn.Module:
    """``model`` after two short epochs on digits: its contract learned, its weights not the initial ones."""
    pl.seed_everything(0)
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=5, limit_val_batches=1, **fast_trainer)
    trainer.fit(model, DigitsDataModule(rgb=model.hparams["in_channels"] == 3))
    return model.eval()


def _raw_digits(count: int, rgb: bool) -> torch.Tensor:
    dm = DigitsDataModule(rgb=rgb)
    dm.setup("test")
    return torch.stack([dm.test_set[i][0] for i in range(count)])  # type: ignore[index]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    fast = {
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": tmp_path_factory.mktemp("export"),
    }
    simple = _trained(SimpleCNN(channels=(8, 16), hidden=(32,)), fast)
    transfer = _trained(TransferClassifier(backbone="resnet10t", in_channels=3, finetune="full"), fast)
    return {"SimpleCNN": simple, "TransferClassifier": transfer}


@pytest.mark.parametrize("name", ["SimpleCNN", "TransferClassifier"])
def test_onnx_torchscript_and_exported_program_equal_eager_at_batch_1_and_17(models, name, tmp_path):
    model = models[name]
    rgb = model.hparams["in_channels"] == 3
    paths = {fmt: export_classifier(model, tmp_path / f"model.{fmt}", fmt) for fmt in ("onnx", "torchscript")}
    paths["exported_program"] = export_classifier(model, tmp_path / "model.pt2", "exported_program")
    session = ort.InferenceSession(str(paths["onnx"]))
    scripted = torch.jit.load(str(paths["torchscript"]))
    program = torch.export.load(str(paths["exported_program"])).module()
    images = _raw_digits(18, rgb)
    for batch in (1, 17):
        x = images[:batch]
        with torch.no_grad():
            eager = model(x).softmax(-1)
            assert torch.allclose(ExportedClassifier(model)(x), eager, atol=1e-6)
            from_ort = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
            assert from_ort.shape == (batch, 10)
            assert torch.allclose(from_ort, eager, atol=1e-4), (from_ort - eager).abs().max()
            assert torch.allclose(scripted(x), eager, atol=1e-4)
            assert torch.allclose(program(x), eager, atol=1e-4)
    # The class names travel with the graph: ONNX metadata, and a JSON file beside the others.
    props = {p.key: json.loads(p.value) for p in onnx.load(str(paths["onnx"])).metadata_props}
    assert props["class_names"] == [str(i) for i in range(10)]
    assert props["image_size"] == [8, 8] and props["in_channels"] == (3 if rgb else 1)
    side = json.loads((tmp_path / "model.torchscript.json").read_text())
    assert side["class_names"] == props["class_names"] and side["mean"] == props["mean"]
    assert (tmp_path / "model.pt2.json").is_file()


def test_the_onnx_graph_normalizes_inside(models, tmp_path):
    """Fed raw images, the graph agrees with the model; fed normalized ones it does not (so it normalizes itself)."""
    model = models["SimpleCNN"]
    session = ort.InferenceSession(str(export_classifier(model, tmp_path / "m.onnx")))
    x = _raw_digits(32, rgb=False)
    normalized = model.input_contract(x)
    raw_out = session.run(None, {"images": x.numpy()})[0]
    wrong = session.run(None, {"images": normalized.numpy()})[0]
    with torch.no_grad():
        eager = model(x).softmax(-1).numpy()
    assert np.abs(raw_out - eager).max() <= 1e-4
    assert np.abs(wrong - eager).max() > 0.1
