"""Multi-label digits end to end: odd, at least 5, prime (from the digit), learned to a test macro F1 >= 0.95.

One short training (module scope) serves the checks after it: the checkpoint alone knows it is multi-label,
TTA and ensembles merge per label, PredictionWriter lists the labels above the threshold, classify() too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import (
    ArrayDataModule,
    CSVImageDataModule,
    EnsembleEvaluation,
    PredictionWriter,
    SimpleCNN,
    TestTimeAugmentation,
    classify,
    load_classifier,
)
from lightning_cnn.cli import CNNCli
from lightning_cnn.data.digits import load_digit_arrays

NAMES = ["odd", "five_plus", "prime"]
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu", "devices": 1}


def digit_labels(digits: np.ndarray) -> np.ndarray:
    """The 0/1 matrix [N, 3]: odd, at least 5, prime."""
    return np.stack([digits % 2 == 1, digits >= 5, np.isin(digits, [2, 3, 5, 7])], 1).astype(np.int64)


def _data(**kwargs) -> ArrayDataModule:
    images, digits = load_digit_arrays()
    x = (images / 16.0).astype(np.float32)
    return ArrayDataModule(x, digit_labels(digits), class_names=NAMES, batch_size=64, **kwargs)


def _model() -> SimpleCNN:
    return SimpleCNN(num_classes=3, in_channels=1, channels=(16, 32), hidden=(64,), lr=3e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("multilabel")
    pl.seed_everything(0)
    dm, model = _data(), _model()
    trainer = pl.Trainer(max_epochs=4, logger=False, enable_checkpointing=False, default_root_dir=root, **QUIET)
    trainer.fit(model, dm)
    ckpt = root / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    test = trainer.test(model, dm, verbose=False)[0]
    return {"root": root, "ckpt": ckpt, "test": test, "model": model}


@pytest.mark.slow
def test_multilabel_digits_reach_a_test_macro_f1_of_095(trained):
    test = trained["test"]
    assert set(test) == {"test/loss", "test/acc", "test/f1", "test/map", "test/exact_match"}
    assert test["test/f1"] >= 0.95, test
    assert test["test/map"] >= test["test/f1"] - 0.05  # ranking is at least as good as the thresholded labels


@pytest.mark.slow
def test_the_checkpoint_alone_is_multilabel_and_classify_gives_label_sets(trained):
    model = load_classifier(trained["ckpt"])
    assert model.multilabel and model.input_contract.class_names == NAMES
    images, digits = load_digit_arrays()
    result = classify(model, torch.from_numpy(images[:200, None] / 16.0).float())
    assert result.label_sets is not None and result.class_names == NAMES
    truth = digit_labels(digits[:200])
    predicted = np.array([[n in s for n in NAMES] for s in result.label_sets])
    assert (predicted == truth).mean() >= 0.9
    assert np.array_equal(predicted, (result.probabilities > 0.5).numpy())
    assert result.labels[0] == ";".join(result.label_sets[0])
    strict = classify(model, torch.from_numpy(images[:200, None] / 16.0).float(), threshold=0.99)
    assert sum(map(len, strict.label_sets)) < sum(map(len, result.label_sets))


@pytest.mark.slow
def test_tta_and_ensembles_merge_per_label_probabilities(trained, tmp_path):
    ckpt = str(trained["ckpt"])
    model = load_classifier(ckpt)
    tta = TestTimeAugmentation(views=("identity",), stages=("test",))
    identity_tta = pl.Trainer(logger=False, callbacks=[tta], default_root_dir=tmp_path, **QUIET)
    result = identity_tta.test(model, _data(), verbose=False)[0]
    # One identity view merged by the mean: the module's own probabilities, so the same scores.
    for name in ("acc", "f1", "map", "exact_match"):
        assert result[f"test/tta_{name}"] == pytest.approx(result[f"test/{name}"], abs=1e-6), name
    views = TestTimeAugmentation(views=("identity", "shift_left"), merge="vote", stages=("test",))
    shifted = pl.Trainer(logger=False, callbacks=[views], default_root_dir=tmp_path, **QUIET)
    assert shifted.test(model, _data(), verbose=False)[0]["test/tta_f1"] >= 0.85

    ensemble = EnsembleEvaluation(checkpoints=[ckpt, ckpt], stages=("test",), include_module=False)
    trainer = pl.Trainer(logger=False, callbacks=[ensemble], default_root_dir=tmp_path, **QUIET)
    scores = trainer.test(load_classifier(ckpt), _data(), verbose=False)[0]
    for name in ("acc", "f1", "map", "exact_match"):  # two identical members: the ensemble is each of them
        assert scores[f"test/ensemble_{name}"] == pytest.approx(scores[f"test/member0_{name}"], abs=1e-6)
        if name != "map":  # the vote's probabilities are vote shares: the same labels, a coarser ranking
            assert scores[f"test/ensemble_vote_{name}"] == pytest.approx(scores[f"test/member0_{name}"], abs=1e-6)
    assert scores["test/ensemble_f1"] == pytest.approx(scores["test/f1"], abs=1e-6)


@pytest.mark.slow
def test_prediction_writer_lists_the_labels_above_the_threshold(trained, tmp_path):
    model = load_classifier(trained["ckpt"])
    for threshold in (0.5, 0.9):
        path = tmp_path / f"predictions_{threshold}.csv"
        writer = PredictionWriter(path=str(path), threshold=threshold)
        trainer = pl.Trainer(logger=False, callbacks=[writer], default_root_dir=tmp_path, **QUIET)
        trainer.predict(model, _data(), return_predictions=False)
        with path.open() as file:
            rows = list(csv.DictReader(file))
        assert list(rows[0]) == ["id", "label", "predicted", "p_odd", "p_five_plus", "p_prime"]
        _images, digits = load_digit_arrays()
        for row in rows:
            probs = [float(row[f"p_{n}"]) for n in NAMES]
            assert row["predicted"] == ";".join(n for n, p in zip(NAMES, probs, strict=True) if p > threshold)
            truth = digit_labels(digits[[int(row["id"])]])[0]
            assert row["label"] == ";".join(n for n, v in zip(NAMES, truth, strict=True) if v)
        right = np.mean([row["predicted"] == row["label"] for row in rows])
        assert right >= (0.9 if threshold == 0.5 else 0.7), right


def _write_csv_source(root: Path, n: int = 600) -> Path:
    images, digits = load_digit_arrays()
    (root / "img").mkdir(parents=True)
    lines = ["file,labels"]
    for i in range(n):
        Image.fromarray((images[i] * 15).astype(np.uint8), "L").save(root / "img" / f"{i}.png")
        names = [name for name, v in zip(NAMES, digit_labels(digits[[i]])[0], strict=True) if v]
        lines.append(f"img/{i}.png,{';'.join(names) or 'none'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def test_a_label_csv_is_a_multilabel_source(tmp_path):
    path = _write_csv_source(tmp_path, n=120)
    dm = CSVImageDataModule(str(path), color="grayscale", batch_size=32)
    assert dm.task == "multilabel"
    assert dm.class_names == sorted([*NAMES, "none"])  # the CSV's label set, sorted
    _, digits = load_digit_arrays()
    expected = digit_labels(digits[:120])
    order = [dm.class_names.index(n) for n in NAMES]
    assert np.array_equal(dm.labels()[:, order], expected)
    assert np.array_equal(dm.labels()[:, dm.class_names.index("none")], (expected.sum(1) == 0).astype(np.int64))
    dm.setup("fit")
    x, y = dm.train_set[0]
    assert x.shape == (1, 8, 8) and y.shape == (4,) and y.dtype == torch.float32
    model = SimpleCNN(num_classes=4, channels=(4,), hidden=())
    pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, default_root_dir=tmp_path, **QUIET
    ).fit(model, dm)
    assert model.multilabel and model.input_contract.class_names == dm.class_names


@pytest.mark.slow
def test_lightning_cnn_fit_on_a_label_matrix_learns_the_task(in_tmp):
    images, digits = load_digit_arrays()
    np.savez(in_tmp / "digits3.npz", x=(images * 15).astype(np.uint8), y=digit_labels(digits))
    pl.seed_everything(0)
    cli = CNNCli(
        args=[
            "fit", "--data", "ArrayDataModule", "--data.path", "digits3.npz", "--data.class_names", str(NAMES),
            "--model.channels", "[16, 32]", "--model.hidden", "[64]", "--model.lr", "0.003",
            "--trainer.max_epochs", "4", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
        ]
    )  # fmt: skip
    assert cli.model.multilabel and cli.model.hparams["num_classes"] == 3
    test = cli.trainer.test(cli.model, cli.datamodule, verbose=False)[0]
    assert test["test/f1"] >= 0.95, test
