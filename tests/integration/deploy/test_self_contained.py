"""A trained checkpoint is a self-contained model: loaded alone, in a fresh process, it classifies raw images."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, SimpleCNN

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.Tensor]:
    """4 epochs on digits with ModelCheckpoint; the best checkpoint and trainer.predict's test probabilities."""
    tmp = tmp_path_factory.mktemp("trained")
    pl.seed_everything(0)
    dm, model = DigitsDataModule(), SimpleCNN(channels=(8, 16), hidden=(32,))
    checkpoint = ModelCheckpoint(dirpath=tmp, filename="best", monitor="val/loss")
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint],
        default_root_dir=tmp,
    )
    trainer.fit(model, dm)
    dm.setup("test")  # predict without a predict set: the test set
    probs = torch.cat(trainer.predict(model, dm, ckpt_path=checkpoint.best_model_path))  # type: ignore[arg-type]
    return Path(checkpoint.best_model_path), probs


def test_checkpoint_alone_classifies_raw_loader_images_as_trainer_predict(trained, tmp_path):
    best, expected = trained
    torch.save(expected, tmp_path / "expected.pt")
    # A fresh process: nothing of the training run's DataModule or model is in memory.
    script = textwrap.dedent(
        f"""
        import torch
        from lightning_cnn import DigitsDataModule, SimpleCNN

        model = SimpleCNN.load_from_checkpoint({str(best)!r}, map_location="cpu").eval()
        dm = DigitsDataModule()
        dm.setup("test")
        with torch.no_grad():
            probs = torch.cat([model(x).softmax(-1) for x, _ in dm.test_dataloader()])
        labels = torch.cat([y for _, y in dm.test_dataloader()])
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        print("MAXDIFF", float((probs - expected).abs().max()))
        print("ACC", float((probs.argmax(-1) == labels).float().mean()))
        """
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    values = dict(line.split() for line in out.stdout.splitlines() if line.startswith(("MAXDIFF", "ACC")))
    assert float(values["MAXDIFF"]) <= 1e-5
    assert float(values["ACC"]) >= 0.7  # a real classifier after 4 epochs (0.78 measured), not just equal numbers


def test_checkpoint_holds_the_contract_readable_with_weights_only(trained):
    best, _ = trained
    ckpt = torch.load(best, weights_only=True, map_location="cpu")
    model = SimpleCNN.load_from_checkpoint(best, map_location="cpu")
    contract = model.input_contract
    assert contract.describe() == {
        "normalize": "dataset",
        "in_channels": 1,
        "image_size": [8, 8],
        "class_names": [str(i) for i in range(10)],
        "model_class": "lightning_cnn.models.simple_cnn.SimpleCNN",
    }
    # The training split's statistics, as the DataModule computed them.
    dm = DigitsDataModule()
    dm.setup("fit")
    mean, std = contract.statistics()  # type: ignore[misc]
    assert mean == pytest.approx(dm.mean, abs=1e-6) and std == pytest.approx(dm.std, abs=1e-6)
    assert "input_contract.mean" in ckpt["state_dict"]


def test_datamodule_normalizes_for_a_foreign_module_and_not_for_ours(tmp_path):
    from lightning_cnn.data.contract import module_normalizes

    class Foreign(pl.LightningModule):
        def forward(self, x):
            return x

    dm = DigitsDataModule()
    dm.setup("fit")
    x = torch.rand(2, 1, 8, 8)
    trainer = pl.Trainer(logger=False, default_root_dir=tmp_path)
    for module, normalized in ((Foreign(), True), (SimpleCNN(channels=(4,), hidden=()), False)):
        trainer.strategy.connect(module)
        dm.trainer = trainer
        out, _ = dm.on_after_batch_transfer((x, torch.zeros(2, dtype=torch.long)), 0)
        assert module_normalizes(module) is not normalized
        assert torch.equal(out, dm.normalize_images(x) if normalized else x)


def _write_digit_pngs(folder: Path, count: int) -> tuple[list[Path], list[str]]:
    """The first ``count`` test-split digits as 8-bit grayscale PNG files, and their class names."""
    import numpy as np
    from PIL import Image

    dm = DigitsDataModule()
    dm.setup("test")
    folder.mkdir(parents=True, exist_ok=True)
    paths, names = [], []
    for i in range(count):
        x, y = dm.test_set[i]  # type: ignore[index]
        path = folder / f"digit_{i:03d}.png"
        Image.fromarray(np.round(x[0].numpy() * 255).astype(np.uint8), mode="L").save(path)
        paths.append(path)
        names.append(str(int(y)))
    return paths, names


def test_one_call_api_classifies_png_files_written_from_digits(trained, tmp_path):
    import numpy as np
    from PIL import Image

    from lightning_cnn import classify, load_classifier

    best, _ = trained
    paths, truth = _write_digit_pngs(tmp_path / "pngs", 120)
    model = load_classifier(best)
    assert not model.training
    result = classify(model, paths)
    accuracy = np.mean([a == b for a, b in zip(result.labels, truth, strict=True)])
    print(f"PNG files classified with the one-call API: accuracy {accuracy:.3f}")
    assert accuracy >= 0.7  # 0.78 on the raw test batches after 4 epochs; PNG rounding costs next to nothing
    assert result.class_names == [str(i) for i in range(10)]
    assert torch.allclose(result.probabilities.sum(-1), torch.ones(len(paths)))
    # The same images as PIL images, uint8 arrays and [0, 1] tensors give the same probabilities; a stack of arrays
    # in any layout ArrayDataModule takes ([N, H, W], [N, C, H, W], [N, H, W, C]) too.
    pil = [Image.open(p) for p in paths[:5]]
    arrays = [np.asarray(p) for p in pil]
    tensors = [torch.from_numpy(a).float().div(255).unsqueeze(0) for a in arrays]
    stacked = np.stack(arrays)
    for other in (pil, arrays, tensors, stacked, stacked[:, None], stacked[..., None]):
        assert torch.allclose(classify(model, other).probabilities, result.probabilities[:5], atol=1e-5)
    # An RGB picture at another size is made gray and resized to the trained 8x8, as a training file would be.
    big = Image.open(paths[0]).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    assert classify(model, big).probabilities.shape == (1, 10)
