"""The bad-input catalogue (docs/bad_inputs.md): every row is one test here, checking the message."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cnn import (
    DigitsDataModule,
    FiniteLossGuard,
    ImageFolderDataModule,
    NonFiniteLossError,
    SimpleCNN,
    TransferClassifier,
)
from lightning_cnn.cli import CNNCli

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]


def fit(model, dm, fast_trainer, **kwargs):
    trainer = pl.Trainer(
        **{**fast_trainer, "max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, **kwargs}
    )
    trainer.fit(model, dm)
    return trainer


# Row 1: unknown names for every choice, in Python.
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SimpleCNN(activation="relux"), "Expected activation to be one of ('relu', "),
        (lambda: SimpleCNN(pool="maxx"), "Expected pool to be one of ('max', 'avg', 'fractional_max', 'none')"),
        (lambda: SimpleCNN(norm="bn"), "Expected norm to be one of ('batch', 'layer', 'instance', 'group', 'none')"),
        (lambda: SimpleCNN(init="he"), "Expected init to be one of ('default', 'xavier_uniform',"),
        (lambda: SimpleCNN(global_pool="mean"), "Expected global_pool to be one of ('avg', 'max', 'flatten')"),
        (lambda: SimpleCNN(loss="crossentropy"), "Expected loss to be one of ('cross_entropy',"),
        (lambda: SimpleCNN(optimizer="adamm"), "Expected optimizer to be one of ('adadelta',"),
        (lambda: SimpleCNN(scheduler="cosin"), "Expected scheduler to be one of ('step',"),
        (lambda: TransferClassifier(backbone="test_resnet", finetune="frozen"), "Expected finetune to be one of"),
        (lambda: TransferClassifier(backbone="resnet5000"), "Unknown timm backbone 'resnet5000'. Did you mean"),
        (
            lambda: DigitsDataModule(normalize="zscore"),
            "Expected normalize to be one of ('dataset', 'instance', 'none')",
        ),
        (lambda: DigitsDataModule(augment="lite"), "Expected augment to be a preset in ('light',"),
        (lambda: DigitsDataModule(augment_on="gpu"), "Expected augment_on to be one of ('cpu', 'device', 'auto')"),
    ],
)
def test_unknown_names(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


# Row 2: unknown names on the command line fail before anything trains, listing the choices.
def test_unknown_name_on_the_command_line(in_tmp, capsys):
    with pytest.raises(SystemExit):
        CNNCli(args=["fit", "--model.activation", "relux", *QUICK])
    err = capsys.readouterr().err
    assert "relux" in err and "leaky_relu" in err
    assert not (in_tmp / "runs").exists()


# Row 3: negative or zero sizes and rates.
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DigitsDataModule(batch_size=0), "Expected batch_size to be > 0, but got 0."),
        (lambda: SimpleCNN(channels=(0,)), "Expected channels[0] to be > 0, but got 0."),
        (lambda: SimpleCNN(kernel_size=-3), "Expected kernel_size to be > 0, but got -3."),
        (lambda: SimpleCNN(lr=-0.1), "Expected lr to be > 0, but got -0.1."),
        (lambda: SimpleCNN(weight_decay=-1.0), "Expected weight_decay to be >= 0, but got -1.0."),
        (lambda: SimpleCNN(dropout=1.5), "Expected dropout to be in [0, 1), but got 1.5."),
        (lambda: SimpleCNN(num_classes=1), "Expected num_classes to be an int >= 2, but got 1."),
        (lambda: DigitsDataModule(image_size=-3), "Expected image_size to be an int >= 1 or None, but got -3."),
    ],
)
def test_bad_sizes_and_rates(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


# Row 4: fractions out of range, or leaving nothing to train.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 1.5}, "Expected val_fraction to be in (0, 1), but got 1.5."),
        ({"test_fraction": -0.1}, "Expected test_fraction to be in (0, 1), but got -0.1."),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "Expected val_fraction + test_fraction to be < 1"),
    ],
)
def test_bad_fractions(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DigitsDataModule(**kwargs)


# Row 5: num_classes disagreeing with the data.
def test_num_classes_disagreeing_with_the_data(fast_trainer):
    message = "SimpleCNN was built with num_classes=5, but DigitsDataModule has 10 classes."
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(SimpleCNN(num_classes=5, channels=(4,)), DigitsDataModule(), fast_trainer)


# Row 6: grayscale data into a 3-channel backbone, and RGB data into a 1-channel model.
@pytest.mark.parametrize(
    ("model", "dm", "message"),
    [
        (
            lambda: TransferClassifier(backbone="test_resnet", in_channels=3),
            lambda: DigitsDataModule(image_size=16),
            "TransferClassifier was built with in_channels=3, but DigitsDataModule has 1 image channels",
        ),
        (
            lambda: SimpleCNN(in_channels=1, channels=(4,)),
            lambda: DigitsDataModule(rgb=True),
            "SimpleCNN was built with in_channels=1, but DigitsDataModule has 3 image channels",
        ),
    ],
)
def test_channel_count_disagreeing_with_the_data(fast_trainer, model, dm, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(model(), dm(), fast_trainer)


def _folder(root: Path, sizes: dict[str, list[int]]) -> Path:
    rng = np.random.default_rng(0)
    for label, side_list in sizes.items():
        (root / label).mkdir(parents=True)
        for i, side in enumerate(side_list):
            Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


# Row 7: images of different sizes without a resize.
def test_images_of_different_sizes_without_resize(tmp_path, fast_trainer):
    root = _folder(tmp_path / "mixed", {"a": [8, 16] * 6, "b": [8, 16] * 6})
    dm = ImageFolderDataModule(str(root), color="grayscale", batch_size=8, normalize="none")
    with pytest.raises(ValueError, match=r"Images of different sizes in one batch: \(1, (8|16), \1\) and ") as err:
        fit(SimpleCNN(num_classes=2, channels=(4,)), dm, fast_trainer)
    assert "Set image_size (e.g. image_size=224) to resize every image to one size." in str(err.value)


# Row 8: a corrupt image names its path.
def test_corrupt_image_names_its_path(tmp_path, fast_trainer):
    root = _folder(tmp_path / "corrupt", {"a": [8] * 6, "b": [8] * 6})
    bad = root / "b" / "3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    dm = ImageFolderDataModule(str(root), color="grayscale", batch_size=64, normalize="none")
    with pytest.raises(Exception, match=re.escape(f"Cannot read image {bad}: ")):
        fit(SimpleCNN(num_classes=2, channels=(4,)), dm, fast_trainer, limit_train_batches=None, limit_val_batches=None)


# Row 9: an empty folder, and an empty class folder.
def test_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape(f"Image folder {tmp_path / 'empty'} has no class subfolders")):
        _ = ImageFolderDataModule(str(tmp_path / "empty")).num_classes
    root = _folder(tmp_path / "one_empty", {"a": [8] * 4, "b": []})
    with pytest.raises(ValueError, match=re.escape(f"Class folder {root / 'b'} has no images")):
        ImageFolderDataModule(str(root)).labels()


# Row 10: a missing checkpoint path.
def test_missing_checkpoint_path(in_tmp):
    with pytest.raises(FileNotFoundError, match=re.escape("Checkpoint file not found: 'nope.ckpt'.")):
        CNNCli(args=["test", "--ckpt_path", "nope.ckpt", *QUIET])


# Row 11: a checkpoint of another architecture names the layer and both shapes.
def test_checkpoint_of_another_architecture(fast_trainer, tmp_path):
    dm = DigitsDataModule()
    trainer = fit(SimpleCNN(channels=(8,), hidden=()), dm, fast_trainer)
    path = tmp_path / "small.ckpt"
    trainer.save_checkpoint(path)
    other = SimpleCNN(channels=(16,), hidden=())
    tester = pl.Trainer(**fast_trainer)
    with pytest.raises(
        RuntimeError, match=r"size mismatch for net\.features\.0\.body\.0\.weight: copying a param with"
    ):
        tester.test(other, dm, ckpt_path=str(path))


# Row 12: a NaN loss stops training, naming the step.
def test_nan_loss_stops_naming_the_step(fast_trainer):
    class Diverging(SimpleCNN):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.global_step >= 3 else loss

    guard = FiniteLossGuard(check_every_n_steps=2)
    with pytest.raises(
        NonFiniteLossError, match=re.escape("The training loss is nan at global step 3 (epoch 0, batch 3)")
    ):
        fit(Diverging(channels=(4,)), DigitsDataModule(), fast_trainer, limit_train_batches=10, callbacks=[guard])


# Row 13: a YAML key that does not exist.
def test_unknown_yaml_key(in_tmp, capsys):
    (in_tmp / "bad.yaml").write_text("model:\n  class_path: SimpleCNN\n  init_args:\n    activaton: relu\n")
    with pytest.raises(SystemExit):
        CNNCli(args=["fit", "-c", "bad.yaml", *QUICK])
    err = capsys.readouterr().err
    assert "activaton" in err
    assert not (in_tmp / "runs").exists()


# Row 14: a weights file that holds no state dict.
def test_weights_file_without_a_state_dict(tmp_path):
    path = tmp_path / "numbers.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=re.escape("holds neither a state dict nor a Lightning checkpoint")):
        TransferClassifier(backbone="test_resnet", weights=str(path))


# Row 15: resuming with --ckpt_path last when there is no earlier run.
def test_resume_without_an_earlier_run(in_tmp):
    with pytest.raises(FileNotFoundError, match=re.escape("--ckpt_path last: no last.ckpt under runs/lightning_cnn")):
        CNNCli(args=["fit", "--ckpt_path", "last", *QUICK, *QUIET])


# Row 16: a checkpoint that holds pickled code is refused (weights_only loading).
def test_checkpoint_with_pickled_code_is_refused(fast_trainer, tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Path("x")}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        pl.Trainer(**fast_trainer).test(SimpleCNN(channels=(4,)), DigitsDataModule(), ckpt_path=str(path))


# Row 17: testing a checkpoint on another split.
def test_checkpoint_tested_on_another_split(fast_trainer, tmp_path):
    trainer = fit(SimpleCNN(channels=(4,)), DigitsDataModule(split_seed=0), fast_trainer)
    path = tmp_path / "seed0.ckpt"
    trainer.save_checkpoint(path)
    message = "The checkpoint was trained with split_seed=0, but this DigitsDataModule has split_seed=1"
    with pytest.raises(ValueError, match=re.escape(message)):
        pl.Trainer(**fast_trainer).test(SimpleCNN(channels=(4,)), DigitsDataModule(split_seed=1), ckpt_path=str(path))


# Row 18: a GPU accelerator on a machine without one, or more GPUs than the machine has (the count is patched, so
# both cases run on any machine).
@pytest.mark.parametrize(
    ("gpus", "args", "message"),
    [
        (0, [], "--trainer.accelerator gpu: this machine has no CUDA or MPS device."),
        (1, ["--trainer.devices", "4"], "--trainer.devices 4: this machine has 1 CUDA or MPS device(s)."),
    ],
)
def test_gpu_accelerator_without_enough_gpus(in_tmp, monkeypatch, gpus, args, message):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=re.escape(message)):
        CNNCli(args=["fit", "--trainer.accelerator", "gpu", *args, *QUICK, *QUIET])
    assert not (in_tmp / "runs").exists()  # refused before the logger or anything else was built


def test_every_catalogue_row_has_its_test():
    catalogue = (Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.md").read_text()
    rows = {int(n) for n in re.findall(r"^\| (\d+) \|", catalogue, flags=re.M)}
    tested = {int(n) for n in re.findall(r"^# Row (\d+):", Path(__file__).read_text(), flags=re.M)}
    assert len(rows) >= 15 and rows == tested


# Row 19: normalization statistics that do not fit the images.
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"rgb": True, "mean": [0.5, 0.5], "std": [0.2, 0.2]},
            ValueError,
            "Expected mean to have 1 or 3 values (DigitsDataModule has 3 image channels), but got [0.5, 0.5].",
        ),
        ({"mean": [float("nan")], "std": [0.2]}, ValueError, "Expected every mean value to be a finite number"),
        ({"mean": [0.5], "std": [0.0]}, ValueError, "Expected every std to be > 0, but got [0.0]."),
        ({"mean": 0.5, "std": 0.2}, TypeError, "Expected mean to be a non-empty list of numbers (one per channel)"),
    ],
)
def test_statistics_that_do_not_fit_the_images(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        DigitsDataModule(**kwargs).setup("fit")


# Row 20: no test images (test_fraction=0 and no separate test set), then test.
def test_testing_without_test_images(fast_trainer):
    message = "DigitsDataModule has no test images: test_fraction=0.0 holds none out and there is no separate test set."
    with pytest.raises(ValueError, match=re.escape(message)):
        pl.Trainer(**fast_trainer).test(SimpleCNN(channels=(4,)), DigitsDataModule(test_fraction=0.0))


# Row 21: a residual block whose padding changes the size.
def test_residual_with_a_size_changing_padding():
    message = "residual=True adds the block's input to its convolutions' output, so the padding must keep the size"
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleCNN(residual=True, padding="valid")


# Row 22: class weights of another length than num_classes.
def test_class_weights_of_another_length():
    message = "Expected class_weights to be a list of num_classes=3 numbers >= 0, but got [1.0, 2.0] (2 numbers)."
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleCNN(num_classes=3, loss="weighted_cross_entropy", class_weights=[1.0, 2.0])


def test_nan_loss_names_the_optimizer_step_its_batch_belongs_to_when_accumulating(fast_trainer):
    class Diverging(SimpleCNN):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if batch_idx == 4 else loss  # batches 4 and 5 make optimizer step 2

    guard = FiniteLossGuard(check_every_n_steps=1)
    with pytest.raises(
        NonFiniteLossError, match=re.escape("The training loss is nan at global step 2 (epoch 0, batch 4)")
    ):
        fit(
            Diverging(channels=(4,)),
            DigitsDataModule(),
            fast_trainer,
            limit_train_batches=10,
            accumulate_grad_batches=2,
            callbacks=[guard],
        )


@pytest.fixture(scope="module")
def named_folder_ckpt(tmp_path_factory):
    """A one-epoch grayscale 8x8 fit on a folder of two classes ("one", "zero"): its best checkpoint and the folder."""
    tmp = tmp_path_factory.mktemp("contract")
    dm = DigitsDataModule()
    dm.setup("fit")
    for i in range(len(dm.train_set)):  # type: ignore[arg-type]
        x, y = dm.train_set[i]  # type: ignore[index]
        if int(y) in (0, 1):
            folder = tmp / "train" / ("zero" if int(y) == 0 else "one")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(x[0].numpy() * 255).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    args = ["--data", "ImageFolderDataModule", "--data.root", str(tmp / "train"), "--data.color", "grayscale"]
    where = ["--trainer.default_root_dir", str(tmp), "--checkpoint.dirpath", str(tmp), "--trainer.logger", "false"]
    CNNCli(args=["fit", *args, *where, *QUICK, *QUIET])
    return tmp / "best.ckpt", tmp


def _predict(ckpt, *data):
    return CNNCli(args=["predict", "--ckpt_path", str(ckpt), "--data", "ImageFolderDataModule", *data, *QUIET])


# Row 23: predict a checkpoint on a folder of other class names.
def test_predict_on_other_class_names_names_both(named_folder_ckpt, tmp_path, monkeypatch):
    ckpt, _tmp = named_folder_ckpt
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(tmp_path / name / "a.png")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:
        _predict(ckpt, "--data.root", str(tmp_path), "--data.color", "grayscale", "--data.image_size", "8")
    message = str(info.value)
    assert (
        "was trained on class_names=['one', 'zero'], but ImageFolderDataModule gives class_names=['cat', 'dog']"
        in message
    )
    assert str(ckpt) in message


# Row 24: predict a checkpoint on images of another size.
def test_predict_at_another_image_size_names_both(named_folder_ckpt, tmp_path, monkeypatch):
    ckpt, tmp = named_folder_ckpt
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ValueError, match=r"trained on image_size=8x8, but ImageFolderDataModule gives image_size=16x16"
    ):
        _predict(ckpt, "--data.predict_root", str(tmp / "train" / "one"), "--data.image_size", "16")


# Row 25: predict a checkpoint with another channel count.
def test_predict_with_other_channels_names_both(named_folder_ckpt, tmp_path, monkeypatch):
    ckpt, tmp = named_folder_ckpt
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"trained on in_channels=1, but ImageFolderDataModule gives in_channels=3"):
        _predict(ckpt, "--data.root", str(tmp / "train"), "--data.color", "rgb", "--data.image_size", "8")


# Row 26: export at another image size than trained.
def test_export_at_another_size_names_both_and_writes_nothing(named_folder_ckpt, tmp_path):
    from lightning_cnn.cli import main

    ckpt, _ = named_folder_ckpt
    out = tmp_path / "m.onnx"
    with pytest.raises(
        ValueError, match=r"best.ckpt was trained on image_size=8x8, but the export gives image_size=32x32"
    ):
        main(["export", "--ckpt_path", str(ckpt), "--output", str(out), "--image_size", "32"])
    assert not list(tmp_path.iterdir())


# Row 27: export with other channels than trained.
def test_export_with_other_channels_names_both_and_writes_nothing(named_folder_ckpt, tmp_path):
    from lightning_cnn.cli import main

    ckpt, _ = named_folder_ckpt
    with pytest.raises(ValueError, match=r"was trained on in_channels=1, but the export gives in_channels=3"):
        main(
            [
                "export",
                "--ckpt_path",
                str(ckpt),
                "--format",
                "torchscript",
                "--output",
                str(tmp_path / "m.pt"),
                "--in_channels",
                "3",
            ]
        )
    assert not list(tmp_path.iterdir())


# Row 28: load_classifier on a checkpoint that names no class.
def test_load_classifier_without_a_class_names_the_file(tmp_path):
    from lightning_cnn import load_classifier

    model = SimpleCNN(channels=(4,), hidden=())
    path = tmp_path / "model.ckpt"
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save({**ckpt, "pytorch-lightning_version": pl.__version__}, path)
    with pytest.raises(
        ValueError, match=re.escape(f"The checkpoint {str(path)!r} names no model class: pass model_class")
    ):
        load_classifier(path)
    assert type(load_classifier(path, model_class=SimpleCNN)) is SimpleCNN


# Row 29: classify given something that is not an image.
def test_classify_refuses_a_non_image_naming_the_kinds():
    from lightning_cnn import classify

    model = SimpleCNN(channels=(4,), hidden=())
    with pytest.raises(
        TypeError,
        match=re.escape(
            "Expected images to be file paths, PIL images, NumPy arrays or tensors (or a list of them), but got dict."
        ),
    ):
        classify(model, {"image": 1})
