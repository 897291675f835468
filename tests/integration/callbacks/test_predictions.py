"""PredictionWriter: predictions.csv from predict, in the predict set's order, with ids, labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lightning_cnn import DigitsDataModule, ImageFolderDataModule, PredictionWriter, SimpleCNN
from lightning_cnn.cli import CNNCli
from tests.helpers.files import read_csv_rows


def test_rows_follow_the_test_split_and_agree_with_test_accuracy(fast_trainer, tmp_path):
    pl.seed_everything(0)
    model, dm = SimpleCNN(channels=(8, 16)), DigitsDataModule()
    trainer = pl.Trainer(**{**fast_trainer, "max_epochs": 2})
    trainer.fit(model, dm)
    accuracy = trainer.test(model, dm, verbose=False)[0]["test/acc"]

    writer = PredictionWriter(path=str(tmp_path / "out" / "preds.csv"))
    pl.Trainer(**{**fast_trainer, "callbacks": [writer]}).predict(model, dm, return_predictions=False)
    rows = read_csv_rows(writer.written)
    assert writer.written == tmp_path / "out" / "preds.csv"
    assert [r["id"] for r in rows] == [str(i) for i in dm.split["test"]]  # pool indices, in split order
    assert [r["label"] for r in rows] == [str(c) for c in dm.labels()[dm.split["test"]]]
    assert np.mean([r["label"] == r["predicted"] for r in rows]) == pytest.approx(accuracy, abs=1e-6)
    probs = np.array([[float(r[f"p_{c}"]) for c in range(10)] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(probs.max(1), [float(r["confidence"]) for r in rows], atol=1e-6)
    assert not list((tmp_path / "out").glob(".*.tmp"))  # written through a temporary file, renamed


def test_image_folder_rows_name_their_files(fast_trainer, tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(root / name / f"{i}.png")
    dm = ImageFolderDataModule(str(root), color="grayscale", batch_size=4, val_fraction=0.2, test_fraction=0.3)
    writer = PredictionWriter(path=str(tmp_path / "preds.csv"), probabilities=False)
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [writer]})
    trainer.predict(SimpleCNN(channels=(4,), num_classes=2), dm, return_predictions=False)
    rows = read_csv_rows(writer.written)
    assert list(rows[0]) == ["id", "label", "predicted", "confidence"]
    assert len(rows) == 6 and all(Path(r["id"]).is_file() for r in rows)
    assert all(Path(r["id"]).parent.name == r["label"] for r in rows)  # the file's class folder is its label
    assert {r["predicted"] for r in rows} <= {"cat", "dog"}


def test_a_foreign_module_returning_logits_gets_probabilities_and_positions(fast_trainer, tmp_path):
    class Logits(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(3, 4)

        def predict_step(self, batch, batch_idx):
            return self.net(batch[0]) * 10

    data = torch.utils.data.TensorDataset(torch.randn(10, 3))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    writer = PredictionWriter(path=str(tmp_path / "p.csv"), class_names=["a", "b", "c", "d"])
    pl.Trainer(**{**fast_trainer, "callbacks": [writer]}).predict(Logits(), loader, return_predictions=False)
    rows = read_csv_rows(writer.written)
    assert [r["id"] for r in rows] == [str(i) for i in range(10)] and {r["label"] for r in rows} == {""}
    probs = np.array([[float(r[f"p_{c}"]) for c in "abcd"] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)


def test_a_predict_step_that_returns_no_probabilities_is_refused(fast_trainer, tmp_path):
    class Scalar(pl.LightningModule):
        def predict_step(self, batch, batch_idx):
            return batch[0].sum()

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 3)), batch_size=2)
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [PredictionWriter(path=str(tmp_path / "p.csv"))]})
    message = r"PredictionWriter expects predict_step to return \[batch, classes\] probabilities, but got a tensor of"
    with pytest.raises(ValueError, match=message):
        trainer.predict(Scalar(), loader, return_predictions=False)
    assert not (tmp_path / "p.csv").exists()


def test_cli_predict_writes_predictions_into_its_run_folder(in_tmp):
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    quick = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"]
    fit = CNNCli(args=["fit", *quick, *quiet])
    best = fit.trainer.checkpoint_callback.best_model_path
    predict = CNNCli(args=["predict", "--ckpt_path", best, *quiet])
    path = Path(predict.trainer.log_dir) / "predictions.csv"
    assert len(read_csv_rows(path)) == 269


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(path)


def test_predict_root_predicts_unlabelled_images_named_by_file(fast_trainer, tmp_path):
    for i, name in enumerate(("cat", "dog")):
        for j in range(6):
            _png(tmp_path / "train" / name / f"{j}.png", 10 * i + j)
    new = tmp_path / "new"
    for j, rel in enumerate(("a.png", "b.png", "deeper/c.png")):
        _png(new / rel, 100 + j)
    (new / "notes.txt").write_text("not an image")
    (new / "broken.png").write_bytes(b"not a png")

    dm = ImageFolderDataModule(str(tmp_path / "train"), predict_root=str(new), color="grayscale", skip_bad_files=True)
    writer = PredictionWriter(path=str(tmp_path / "preds.csv"))
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [writer]})
    with pytest.warns(UserWarning, match=r"Skipped 1 of 4 images in .*new that could not be read: .*broken.png"):
        trainer.predict(SimpleCNN(channels=(4,), num_classes=2), dm, return_predictions=False)
    rows = read_csv_rows(writer.written)
    assert [Path(r["id"]).relative_to(new).as_posix() for r in rows] == ["a.png", "b.png", "deeper/c.png"]
    assert {r["label"] for r in rows} == {""} and {r["predicted"] for r in rows} <= {"cat", "dog"}
    assert dm.test_set is None  # the test split was not opened to predict other images


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda root: None, FileNotFoundError, r"predict_root='.*missing' does not exist or is not a folder."),
        (lambda root: root.mkdir(), ValueError, r"predict_root='.*missing' holds no images \(files ending in \.bmp, "),
    ],
)
def test_predict_root_that_is_missing_or_empty(fast_trainer, tmp_path, make, error, message):
    for i, name in enumerate(("cat", "dog")):
        for j in range(6):
            _png(tmp_path / "train" / name / f"{j}.png", 10 * i + j)
    make(tmp_path / "missing")
    dm = ImageFolderDataModule(str(tmp_path / "train"), predict_root=str(tmp_path / "missing"), color="grayscale")
    with pytest.raises(error, match=message):
        pl.Trainer(**fast_trainer).predict(SimpleCNN(channels=(4,), num_classes=2), dm)


def _loader(n: int, seed: int) -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)))
    return torch.utils.data.DataLoader(data, batch_size=3)


def test_several_predict_loaders_keep_every_row_with_a_dataloader_column(fast_trainer, tmp_path):
    writer = PredictionWriter(path=str(tmp_path / "p.csv"), class_names=[str(c) for c in range(10)])
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [writer]})
    trainer.predict(SimpleCNN(channels=(4,)), [_loader(5, 0), _loader(7, 1)], return_predictions=False)
    rows = read_csv_rows(writer.written)
    assert [(r["dataloader"], r["id"]) for r in rows] == [("0", str(i)) for i in range(5)] + [
        ("1", str(i)) for i in range(7)
    ]


def test_ids_come_from_the_datamodule_only_for_its_own_loader(fast_trainer, tmp_path):
    model = SimpleCNN(channels=(4,))
    writer = PredictionWriter(path=str(tmp_path / "p.csv"))
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [writer]})
    trainer.test(model, DigitsDataModule(), verbose=False)  # the trainer keeps this DataModule
    trainer.predict(model, _loader(5, 0), return_predictions=False)
    assert [r["id"] for r in read_csv_rows(writer.written)] == ["0", "1", "2", "3", "4"]


def test_low_precision_probabilities_are_not_passed_through_softmax_again(fast_trainer, tmp_path):
    class Bf16Probabilities(pl.LightningModule):
        def predict_step(self, batch, batch_idx):
            # 0.99 rounds to 0.98828125 in bf16: the row sums to 0.998, off by more than float32's tolerance
            probs = torch.full((len(batch[0]), 10), 0.01 / 9).index_fill(1, torch.tensor([0]), 0.99)
            return probs.bfloat16()

    writer = PredictionWriter(path=str(tmp_path / "p.csv"), class_names=[str(c) for c in range(10)])
    pl.Trainer(**{**fast_trainer, "callbacks": [writer]}).predict(Bf16Probabilities(), _loader(5, 0))
    rows = read_csv_rows(writer.written)
    assert {r["predicted"] for r in rows} == {"0"}
    assert [float(r["confidence"]) for r in rows] == pytest.approx([0.98828125] * 5, abs=1e-6)


def test_the_command_lines_writer_warns_and_steps_aside_for_other_outputs(fast_trainer, tmp_path):
    class Dicts(SimpleCNN):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return {"logits": self(batch[0])}

    writer = PredictionWriter(path=str(tmp_path / "p.csv"), strict=False)
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [writer]})
    with pytest.warns(UserWarning, match=r"but got a dict with keys \['logits'\]. No predictions file is written"):
        out = trainer.predict(Dicts(channels=(4,)), _loader(5, 0))
    assert len(out) == 2 and writer.written is None and not (tmp_path / "p.csv").exists()
