"""``lightning-cnn predict`` on new files with a checkpoint alone, and ``lightning-cnn export``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_cnn import DigitsDataModule
from lightning_cnn.cli import CNNCli

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def write_digits(
    folder: Path, classes: dict[int, str] | None, count: int, split: str = "test"
) -> list[tuple[Path, int]]:
    """Digits of ``split`` as 8-bit PNG files: in class subfolders named by ``classes``, or flat (``None``)."""
    dm = DigitsDataModule()
    dm.setup("fit" if split == "train" else "test")
    dataset = dm.train_set if split == "train" else dm.test_set
    written = []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        x, y = dataset[i]  # type: ignore[index]
        label = int(y)
        if classes is not None and label not in classes:
            continue
        where = folder / classes[label] if classes is not None else folder
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{split}_{i:04d}.png"
        Image.fromarray(np.round(x[0].numpy() * 255).astype(np.uint8), mode="L").save(path)
        written.append((path, label))
        if len(written) == count:
            break
    return written


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short fit on a folder of two named classes (digits 0 and 1 as PNG files); its best checkpoint."""
    tmp = tmp_path_factory.mktemp("folder_run")
    write_digits(tmp / "train", {0: "zero", 1: "one"}, 160, split="train")
    run = ["--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp), "--checkpoint.dirpath", str(tmp)]
    args = ["--data", "ImageFolderDataModule", "--data.root", str(tmp / "train"), "--data.color", "grayscale"]
    CNNCli(args=["fit", *args, "--data.batch_size", "32", *run, *QUIET, "--trainer.logger", "false"])
    return tmp / "best.ckpt"


def test_predict_files_with_the_checkpoint_alone_in_another_folder(folder_run, tmp_path, monkeypatch):
    new = write_digits(tmp_path / "new", None, 400)
    new = [(p, y) for p, y in new if y in (0, 1)]
    for path in (tmp_path / "new").glob("*.png"):
        if path not in {p for p, _ in new}:
            path.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not where training ran: nothing of the training run is at hand but the file
    cli = CNNCli(
        args=[
            "predict",
            "--ckpt_path",
            str(folder_run),
            "--data",
            "ImageFolderDataModule",
            "--data.predict_root",
            str(tmp_path / "new"),
            *QUIET,
        ]
    )
    assert cli.datamodule.class_names == ["one", "zero"]  # taken from the checkpoint (sorted folder names)
    with open(_csv(elsewhere), newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows and {"p_zero", "p_one"} <= set(rows[0])  # the checkpoint's class names, in its order
    truth = {str(p): "zero" if y == 0 else "one" for p, y in new}
    accuracy = np.mean([row["predicted"] == truth[row["id"]] for row in rows])
    print(f"predict on {len(rows)} new files: accuracy {accuracy:.3f}")
    assert len(rows) == len(new) and accuracy >= 0.9  # zero against one, 3 epochs


def _csv(folder: Path) -> Path:
    found = sorted(folder.rglob("predictions.csv"))
    assert len(found) == 1, found
    return found[0]


def test_export_onnx_of_a_default_run_gives_its_probabilities_on_raw_images(in_tmp):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import json

    import torch

    from lightning_cnn import load_classifier
    from lightning_cnn.cli import DEFAULT_RUN, main

    # The default run (augmentation, cosine schedule, test after fit), shortened: its best.ckpt.
    main([*DEFAULT_RUN, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "6", *QUIET])
    best = next(in_tmp.rglob("best.ckpt"))
    main(["export", "--ckpt_path", str(best), "--format", "onnx", "--output", "model.onnx"])
    session = ort.InferenceSession(str(in_tmp / "model.onnx"))
    dm = DigitsDataModule()
    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))  # raw [0, 1] images, as the loader gives them
    model = load_classifier(best)
    with torch.no_grad():
        eager = model(x).softmax(-1).numpy()
    assert np.abs(session.run(None, {"images": x.numpy()})[0] - eager).max() <= 1e-4
    props = {p.key: json.loads(p.value) for p in onnx.load(str(in_tmp / "model.onnx")).metadata_props}
    assert props["class_names"] == [str(i) for i in range(10)]
    # The default output name: beside the checkpoint, with the format's suffix.
    main(["export", "--ckpt_path", str(best), "--format", "torchscript"])
    assert best.with_suffix(".pt").is_file() and best.with_suffix(".pt.json").is_file()
