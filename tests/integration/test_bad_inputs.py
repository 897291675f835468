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
        ({"val_fraction": 1.5}, "Expected val_fraction to be in [0, 1), but got 1.5."),
        ({"test_fraction": -0.1}, "Expected test_fraction to be in [0, 1), but got -0.1."),
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


def _digit_arrays(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[:n] * (255 / 16)).astype(np.uint8), digits.target[:n]


# Row 30: ArrayDataModule from the command line with the default logger; its former argument channels_last.
def test_arrays_from_the_command_line_with_the_default_logger(in_tmp):
    from lightning_cnn import ArrayDataModule

    x, y = _digit_arrays()
    np.savez(in_tmp / "a.npz", x=x, y=y)
    cli = CNNCli(args=["fit", "--data", "ArrayDataModule", "--data.path", "a.npz", *QUICK, *QUIET])
    assert cli.trainer.global_step == 2
    assert "layout: auto" in (in_tmp / "runs" / "lightning_cnn" / "version_0" / "hparams.yaml").read_text()
    message = "ArrayDataModule takes layout, not channels_last (got channels_last=True): pass layout='channels_last'"
    with pytest.raises(TypeError, match=re.escape(message)):
        ArrayDataModule(x, y, channels_last=True)


# Row 31: channels-last arrays are taken as such; a layout the channel count cannot tell is refused.
def test_channels_last_arrays_are_not_read_as_channels_first():
    from lightning_cnn import ArrayDataModule

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 8, 8, 3)), np.repeat([0, 1], 20)
    for layout in ("auto", "channels_last"):
        dm = ArrayDataModule(x, y, layout=layout)
        assert (dm.in_channels, dm.image_size) == (3, 8)
        dm.setup("fit")
        i = int(dm.split["train"][0])
        torch.testing.assert_close(dm.train_set[0][0], torch.from_numpy(x[i]).permute(2, 0, 1), check_dtype=False)
    assert ArrayDataModule(rng.random((40, 1, 4, 4)), y).in_channels == 1  # both axes could: C < H, W decides
    message = "Expected x to be images [N, C, H, W] or [N, H, W, C] with C in (1, 3, 4) channels that tell the"
    with pytest.raises(ValueError, match=re.escape(message) + r".*\(40, 8, 8, 8\)\. Pass layout='channels_first'"):
        ArrayDataModule(rng.random((40, 8, 8, 8)), y)
    assert ArrayDataModule(rng.random((40, 8, 8, 8)), y, layout="channels_first").in_channels == 8


# Row 32: NaN or infinite pixels, named by their first index.
def test_non_finite_pixels_are_refused_naming_the_first_index(tmp_path):
    from lightning_cnn import ArrayDataModule

    x, y = np.random.default_rng(0).random((40, 8, 8)), np.repeat([0, 1], 20)
    x[7, 2, 3], x[9, 0, 0] = np.nan, np.inf
    message = "Expected x to hold finite pixel values, but got nan at index (7, 2, 3) (image 7; 2 non-finite values"
    with pytest.raises(ValueError, match=re.escape(message)):
        ArrayDataModule(x, y)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dm = ArrayDataModule(path=str(tmp_path / "d.npz"))
    with pytest.raises(ValueError, match=re.escape("d.npz:x to hold finite pixel values, but got nan at index (7,")):
        dm.setup("fit")


# Row 33: labels that are not 0..K-1.
@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1, 2], "the class indices 0..1 (2 classes, each at least once), but got the labels [1, 2]: classes [0]"),
        ([0, 10**6], "the class indices 0..1 (2 classes, each at least once), but got the labels [0, 1000000]"),
        ([*range(10), 12], "0..10 (11 classes, each at least once), but got the labels [0, 1, 2, 3, 4, 5, 6, 7, 8, 9,"),
    ],
)
def test_labels_must_be_0_to_k_minus_1(labels, message):
    from lightning_cnn import ArrayDataModule

    y = np.repeat(labels, 6)
    with pytest.raises(ValueError, match=re.escape(message) + ".*Relabel to 0.."):
        ArrayDataModule(np.zeros((len(y), 8, 8), np.float32), y)


# Row 34: float images in 0-255.
def test_float_images_outside_0_1_are_refused():
    from lightning_cnn import ArrayDataModule

    x, y = _digit_arrays()
    message = "Expected x (float images) to hold values in [0, 1], but got values in [0, 255]. Scale them to [0, 1]"
    with pytest.raises(ValueError, match=re.escape(message)):
        ArrayDataModule(x.astype(np.float32), y)
    assert ArrayDataModule(x.astype(np.float32) / 255, y).num_classes == 10


# Row 35: skip_bad_files=True that skips every training image of a class.
def test_skipping_every_training_image_of_a_class_is_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(8):
            if name == "a":
                Image.fromarray(np.full((4, 4), 30 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
            else:
                (tmp_path / name / f"{i}.png").write_bytes(b"not a png")
    dm = ImageFolderDataModule(str(tmp_path), skip_bad_files=True, val_fraction=0.25, test_fraction=0.25)
    with pytest.warns(UserWarning, match="Skipped 4 of 8 images"):
        with pytest.raises(ValueError, match=r"skipped every training image of class 'b' in .*: none could be read"):
            dm.setup("fit")


# Row 36: a JPEG with EXIF orientation 6 loads upright.
def test_jpeg_with_exif_orientation_loads_upright(tmp_path):
    from lightning_cnn.data.readers import load_image

    stored = np.zeros((16, 32, 3), np.uint8)  # 32 wide, 16 tall: white left half, as the camera stored it
    stored[:, :16] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    x = load_image(tmp_path / "photo.jpg")
    assert x.shape == (3, 32, 16)  # upright: 16 wide, 32 tall
    assert x[:, :16].mean() > 0.9 and x[:, 16:].mean() < 0.1  # the stored left half is now on top


# Row 37: an .npz test set with other channels; empty arrays.
def test_npz_test_set_with_other_channels_and_empty_arrays(tmp_path):
    from lightning_cnn import ArrayDataModule

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    np.savez(tmp_path / "a.npz", x=rng.random((40, 8, 8)), y=y, x_test=rng.random((10, 8, 8, 3)), y_test=y[::4])
    dm = ArrayDataModule(path=str(tmp_path / "a.npz"))
    dm.setup("fit")
    message = r"a.npz:x_test to have the training images' 1 channels \(.*a.npz:x as \[N, C, H, W\]: \[40, 1, 8, 8\]\)"
    with pytest.raises(ValueError, match=message + r", but they have 3 \(\[10, 3, 8, 8\]\)"):
        dm.setup("test")
    with pytest.raises(ValueError, match=re.escape("Expected x to hold at least one image with pixels, but got shape")):
        ArrayDataModule(np.zeros((0, 8, 8), np.float32), np.zeros(0, np.int64))
    np.savez(tmp_path / "b.npz", x=rng.random((40, 8, 8)), y=y, x_test=np.zeros((0, 8, 8)), y_test=y[:0])
    with pytest.raises(ValueError, match=re.escape("b.npz:x_test to hold at least one image with pixels")):
        ArrayDataModule(path=str(tmp_path / "b.npz")).setup("test")


def _member_checkpoint(path: Path, num_classes: int = 10) -> None:
    model = SimpleCNN(num_classes=num_classes, channels=(4,), hidden=())
    hparams = {**model.hparams, "_class_path": "lightning_cnn.SimpleCNN"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, path)


# Row 38: one checkpoint under several spellings, twice, or a run folder's best.ckpt and last.ckpt.
def test_ensemble_counts_each_checkpoint_file_once(in_tmp):
    from lightning_cnn import EnsembleEvaluation

    _member_checkpoint(in_tmp / "m.ckpt")
    x = torch.rand(2, 1, 8, 8)
    spellings = ["m.ckpt", str(in_tmp / "m.ckpt"), "./m.ckpt", "m.ckpt"]
    with pytest.warns(UserWarning, match=re.escape("Checkpoint './m.ckpt' is given more than once (as 'm.ckpt'")):
        ensemble = EnsembleEvaluation(checkpoints=spellings, include_module=False)
        assert ensemble.member_logits(x).shape[0] == 1
    run = in_tmp / "run" / "checkpoints"
    run.mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        _member_checkpoint(run / name)
    with pytest.warns(UserWarning, match=r"'run': left out \[.*last.ckpt'\], the last checkpoint of a run"):
        ensemble = EnsembleEvaluation(checkpoints="run", include_module=False)
        assert ensemble.member_logits(x).shape[0] == 1
    assert ensemble.checkpoint_paths == [str(run / "best.ckpt").removeprefix(f"{in_tmp}/")]
    named = EnsembleEvaluation(checkpoints=[str(run / "best.ckpt"), str(run / "last.ckpt")], include_module=False)
    assert named.member_logits(x).shape[0] == 2  # named one by one, both are members


# Row 39: an ensemble member with 5 classes on 10-class data.
def test_ensemble_member_with_other_classes(fast_trainer, tmp_path):
    from lightning_cnn import ArrayDataModule, EnsembleEvaluation

    x, y = _digit_arrays(600)
    keep = y < 5
    trainer = fit(SimpleCNN(num_classes=5, channels=(4,), hidden=()), ArrayDataModule(x[keep], y[keep]), fast_trainer)
    trainer.save_checkpoint(tmp_path / "five.ckpt")
    ensemble = EnsembleEvaluation(checkpoints=[str(tmp_path / "five.ckpt")])
    tester = pl.Trainer(**{**fast_trainer, "callbacks": [ensemble], "limit_test_batches": 1})
    message = "five.ckpt was built with num_classes=5, but this DigitsDataModule has 10 classes"
    with pytest.raises(ValueError, match=re.escape(message)):
        tester.test(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(), verbose=False)


# Row 40: PredictionWriter's path is an existing folder (or lies under a file): refused when predict starts.
def test_prediction_writer_path_is_checked_before_predicting(fast_trainer, tmp_path):
    from lightning_cnn import PredictionWriter

    class Counting(SimpleCNN):
        calls = 0

        def predict_step(self, *args, **kwargs):
            Counting.calls += 1
            return super().predict_step(*args, **kwargs)

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "file").write_text("x")
    for path, error, message in [
        (out, IsADirectoryError, f"PredictionWriter's path to be a CSV file, but {str(out)!r} is a folder"),
        (tmp_path / "file" / "p.csv", NotADirectoryError, f"but {str(tmp_path / 'file')!r} is a file"),
    ]:
        trainer = pl.Trainer(**{**fast_trainer, "callbacks": [PredictionWriter(path=str(path))]})
        with pytest.raises(error, match=re.escape(message)):
            trainer.predict(Counting(channels=(4,), hidden=()), DigitsDataModule())
    assert Counting.calls == 0
    assert list(out.iterdir()) == [] and not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.csv"))


def _quick_run(in_tmp: Path) -> Path:
    """One short command-line run; returns its checkpoint folder (best.ckpt and last.ckpt)."""
    CNNCli(args=["fit", "--model.channels", "[4]", "--model.hidden", "[]", *QUICK, *QUIET])
    return in_tmp / "runs" / "lightning_cnn" / "version_0" / "checkpoints"


# Row 50: a checkpoint that is cut off, empty or no checkpoint at all names the file and what is wrong with it.
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: good[: len(good) // 2], "is incomplete ("),
        (lambda good: b"", "is empty (0 bytes)"),
        (lambda good: b"epoch,loss\n0,1.0\n", "is not a checkpoint"),
    ],
)
def test_unreadable_checkpoint_names_the_file(tmp_path, content, message):
    from lightning_cnn import AtomicCheckpointIO
    from lightning_cnn.checkpoint import load_checkpoint_file

    good = tmp_path / "good.ckpt"
    torch.save({"w": torch.ones(100)}, good)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content(good.read_bytes()))
    with pytest.raises(ValueError, match=re.escape(f"Cannot read checkpoint {str(bad)!r}: the file {message}")):
        load_checkpoint_file(bad)
    with pytest.raises(ValueError, match=re.escape(message)) as err:  # what Lightning reads with on resume
        AtomicCheckpointIO().load_checkpoint(bad)
    assert f"Other checkpoints in its folder, newest first: {str(good)!r}" in str(err.value)


# Row 51: resuming from (or testing) a cut-off last.ckpt names it and the run's other checkpoint, before the run's
# folder is touched.
def test_resuming_from_a_cut_off_last_checkpoint(in_tmp):
    folder = _quick_run(in_tmp)
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    metrics = (folder.parent / "metrics.csv").read_text()
    relative = last.relative_to(in_tmp)
    expected = f"Cannot read checkpoint {str(relative)!r}: the file is incomplete (1000 bytes, cut off while it was"
    with pytest.raises(ValueError, match=re.escape(expected)) as err:
        CNNCli(args=["fit", "--ckpt_path", "last", "--model.channels", "[4]", "--model.hidden", "[]", *QUICK, *QUIET])
    assert f"Other checkpoints in its folder, newest first: {str(relative.parent / 'best.ckpt')!r}" in str(err.value)
    assert (folder.parent / "metrics.csv").read_text() == metrics
    with pytest.raises(ValueError, match=re.escape("Cannot read checkpoint 'runs/lightning_cnn/version_0/checkpoints")):
        CNNCli(args=["test", "--ckpt_path", "runs/lightning_cnn/version_0/checkpoints/last.ckpt", *QUIET])


# Row 52: --ckpt_path last for test, validate and predict loads the newest run's last.ckpt (not the initial weights).
def test_ckpt_path_last_for_every_subcommand(in_tmp):
    folder = _quick_run(in_tmp)
    trained = torch.load(folder / "last.ckpt", weights_only=True)["state_dict"]
    for subcommand in ("validate", "test", "predict"):
        cli = CNNCli(args=[subcommand, "--ckpt_path", "last", *QUIET, "--trainer.limit_val_batches", "1"])
        assert cli.config[subcommand]["ckpt_path"] == str(Path("runs/lightning_cnn/version_0/checkpoints/last.ckpt"))
        for key, value in cli.model.state_dict().items():
            assert torch.equal(value.cpu(), trained[key]), (subcommand, key)


# Row 53: test, validate or predict without --ckpt_path refuse to evaluate the untrained model, unless asked to.
@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_untrained_weights_needs_a_flag(in_tmp, subcommand):
    message = f"lightning-cnn {subcommand} without --ckpt_path would use the model's initial, untrained weights."
    with pytest.raises(ValueError, match=re.escape(message)):
        CNNCli(args=[subcommand, *QUIET])
    assert not (in_tmp / "runs").exists()
    limit = "--trainer.limit_predict_batches" if subcommand == "predict" else "--trainer.limit_test_batches"
    limits = [limit, "1", "--trainer.limit_val_batches", "1"]
    cli = CNNCli(args=[subcommand, "--allow_untrained", "true", "--model.channels", "[4]", *limits, *QUIET])
    assert cli.config[subcommand]["ckpt_path"] is None


# Row 54: a misspelled key of the model or DataModule (YAML or command line) names it, the class and its options.
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "model:\n  init_args:\n    activaton: gelu\n",
            "error: --model: SimpleCNN has no option 'activaton'. Did you mean 'activation'? Its options: num_classes,",
        ),
        (
            "data:\n  init_args:\n    batchsize: 3\n",
            "error: --data: DigitsDataModule has no option 'batchsize'. Did you mean 'batch_size'? Its options:",
        ),
    ],
)
def test_misspelled_key_names_it(in_tmp, capsys, config, message):
    (in_tmp / "bad.yaml").write_text(config)
    with pytest.raises(SystemExit) as exit_:
        CNNCli(args=["fit", "-c", "bad.yaml", *QUICK])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Union subtypes" not in err
    assert not (in_tmp / "runs").exists()


# Row 55: a value a constructor refuses (--data.batch_size=-1) exits like a parser error: rc 2, one message.
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--data.batch_size=-1", "error: --data: Expected batch_size to be > 0, but got -1.\n"),
        ("--model.channels=[0]", "error: --model: Expected channels[0] to be > 0, but got 0.\n"),
    ],
)
def test_refused_value_exits_like_a_parser_error(in_tmp, capsys, option, message):
    with pytest.raises(SystemExit) as exit_:
        CNNCli(args=["fit", option, *QUICK, *QUIET])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(message) and "Traceback" not in err and "Namespace(" not in err
    assert len(err.splitlines()) <= 3


# Row 56: an unknown --model or --data class lists the classes (with close matches).
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "NoSuchModel"], "error: --model NoSuchModel: no such model class. The model classes: SimpleCNN, "),
        (["--model", "SimpleCN"], "no such model class. Did you mean 'SimpleCNN'? The model classes: SimpleCNN, Tra"),
        (["--data", "DigitDataModule"], "--data DigitDataModule: no such data class. Did you mean 'DigitsDataModule'"),
    ],
)
def test_unknown_class_lists_the_classes(in_tmp, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        CNNCli(args=["fit", *args, *QUICK])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# Row 57: an infinite, NaN or negative learning rate (or weight decay) is refused at construction.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": float("inf")}, "Expected lr to be a finite number > 0, but got inf."),
        ({"lr": float("nan")}, "Expected lr to be > 0, but got nan."),
        ({"lr": -1.0}, "Expected lr to be > 0, but got -1.0."),
        ({"weight_decay": float("inf")}, "Expected weight_decay to be a finite number >= 0, but got inf."),
    ],
)
def test_infinite_learning_rate(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleCNN(**kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        TransferClassifier(backbone="test_resnet", **kwargs)


# Row 58: a weights file of another network (a ViT, a SimpleCNN checkpoint) is refused, naming what matched.
def test_weights_of_another_network(tmp_path):
    import timm

    vit = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), vit)
    cnn = tmp_path / "cnn.ckpt"
    torch.save({"state_dict": SimpleCNN(channels=(4,)).state_dict()}, cnn)
    for path in (vit, cnn):
        message = f"weights={str(path)!r} gives 0 of the 90 tensors of the model (its classifier aside), below the 50%"
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            TransferClassifier(backbone="test_resnet", weights=str(path))
        assert "matched none; the file's tensors: " in str(err.value)


# Row 59: a weights file that is no torch.save file (text) is a ValueError naming it.
def test_weights_file_that_is_text(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("resnet18 weights: see the link\n")
    message = f"weights={str(path)!r} is no state dict or checkpoint file. Cannot read checkpoint {str(path)!r}:"
    with pytest.raises(ValueError, match=re.escape(message)):
        TransferClassifier(backbone="test_resnet", weights=str(path))


# Row 60: a SimpleCNN deeper than the images allow (1-pixel maps before a block) fails at setup or construction.
def test_network_deeper_than_the_images(fast_trainer):
    message = (
        "SimpleCNN has 5 conv blocks (channels), but DigitsDataModule's images 8x8 are 1x1 after 3 of them"
        " (8x8 -> 4x4 -> 2x2 -> 1x1): block 3 would convolve 1-pixel maps"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(SimpleCNN(channels=(8, 8, 8, 8, 8)), DigitsDataModule(), fast_trainer)
    with pytest.raises(ValueError, match=re.escape("but images of input_size 8x8 are 1x1 after 3 of them")):
        SimpleCNN(channels=(8, 8, 8, 8, 8), input_size=8)
    fit(SimpleCNN(channels=(8, 8, 8)), DigitsDataModule(), fast_trainer)  # 8 -> 4 -> 2 -> 1 fits


# Row 61: a kernel larger than the images (padding="valid"), or a flatten head sized for other images.
def test_kernel_or_flatten_head_that_does_not_fit_the_images(fast_trainer):
    message = "SimpleCNN's conv block 0 does not fit DigitsDataModule's images 8x8: its input is 8x8 (8x8), too small"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(SimpleCNN(kernel_size=15, padding="valid"), DigitsDataModule(), fast_trainer)
    with pytest.raises(ValueError, match=re.escape("SimpleCNN's conv block 0 does not fit images of input_size 8x8")):
        SimpleCNN(kernel_size=15, padding="valid", global_pool="flatten", input_size=8)
    message = "global_pool='flatten' sized the head for input_size=(16, 16), but DigitsDataModule's images are 8x8"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(SimpleCNN(global_pool="flatten", input_size=16), DigitsDataModule(), fast_trainer)


# Row 62: a channel count or width that is no int.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 2.5}, "Expected in_channels to be an int, but got float 2.5."),
        ({"channels": (8, 16.5)}, "Expected channels[1] to be an int, but got float 16.5."),
        ({"input_size": (8, 8, 3)}, "Expected input_size to be an int >= 1 or a pair of them (height, width)"),
    ],
)
def test_channel_count_that_is_no_int(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        SimpleCNN(**kwargs)


# Row 70: num_folds below 2 or not an int, fold outside 0..num_folds-1 or missing, fold without num_folds.
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_folds": 1, "fold": 0}, ValueError, "Expected num_folds to be an int >= 2, but got 1."),
        ({"num_folds": 5, "fold": 5}, ValueError, "Expected fold to be an int in 0..4 (num_folds=5), but got 5."),
        ({"num_folds": 5}, TypeError, "Expected fold to be an int in 0..4 (num_folds=5), but got None."),
        ({"fold": 2}, ValueError, "Expected fold to be None without num_folds, but got 2: pass num_folds too."),
    ],
)
def test_bad_fold_settings(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        DigitsDataModule(**kwargs)


# Row 71: resuming or testing a checkpoint of one fold with another fold setting.
def test_a_checkpoint_of_another_fold_is_refused_on_resume_and_test(fast_trainer, tmp_path):
    trainer = fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(num_folds=3, fold=0), fast_trainer)
    trainer.save_checkpoint(tmp_path / "fold0.ckpt")
    message = (
        "The checkpoint was trained with fold=0 (fold 0 of 3), but this DigitsDataModule has fold=1 (fold 1 of 3):"
        " its validation images would be the checkpoint's training data. Pass fold=0 (on the command line:"
        " --data.fold 0)."
    )
    again = pl.Trainer(**{**fast_trainer, "max_epochs": 2, "limit_train_batches": 2, "limit_val_batches": 1})
    with pytest.raises(ValueError, match=re.escape(message)):
        again.fit(
            SimpleCNN(channels=(4,), hidden=()),
            DigitsDataModule(num_folds=3, fold=1),
            ckpt_path=tmp_path / "fold0.ckpt",
        )
    tester = pl.Trainer(**{**fast_trainer, "limit_test_batches": 1})
    with pytest.raises(
        ValueError,
        match=re.escape(
            "trained with num_folds=3 (fold 0 of 3), but this DigitsDataModule has num_folds=None (a single split)"
        ),
    ):
        tester.test(
            SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(), ckpt_path=tmp_path / "fold0.ckpt", verbose=False
        )


# Row 72: an ensemble member of another fold evaluating this fold's validation set.
def test_an_ensemble_member_of_another_fold_is_refused_on_validation(fast_trainer, tmp_path):
    from lightning_cnn import EnsembleEvaluation

    trainer = fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(num_folds=3, fold=1), fast_trainer)
    trainer.save_checkpoint(tmp_path / "fold1.ckpt")
    ensemble = EnsembleEvaluation(checkpoints=[str(tmp_path / "fold1.ckpt")], stages=("val", "test"))
    other = pl.Trainer(**{**fast_trainer, "callbacks": [ensemble], "limit_val_batches": 1, "limit_test_batches": 1})
    message = (
        "fold1.ckpt was trained on fold 1 of 3, but this DigitsDataModule validates on fold 0 of 3: this validation"
        " set was (in part) its training data. Members of other folds may be ensembled on the test split only"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        other.validate(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(num_folds=3, fold=0), verbose=False)
    result = other.test(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(num_folds=3, fold=0), verbose=False)
    assert "test/member1_acc" in result[0]  # the test split is the same for every fold


# Row 73: sampler settings that do not fit together, and sampler_weights of another length than the data.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": "balanced", "device_resident": True, "augment_on": "device"}, "sampler='balanced' draws through"),
        (
            {"sampler": "weighted"},
            "Expected sampler_weights to be one weight per sample with sampler='weighted', but got None.",
        ),
        (
            {"sampler_weights": [1.0] * 1797},
            "Expected sampler_weights to be one weight per sample with sampler='weighted', but got weights with"
            " sampler='shuffle'.",
        ),
        ({"samples_per_epoch": 100}, "Expected samples_per_epoch to be None with sampler='shuffle'"),
        (
            {"sampler": "weighted", "sampler_weights": [1.0] * 10},
            "Expected sampler_weights to hold one weight per sample (1797, in the source's order), but got 10 weights.",
        ),
        (
            {"sampler": "weighted", "sampler_weights": [0.0] * 1797},
            "Expected sampler_weights to be finite numbers >= 0, not all 0 on the training split, but got 1797"
            " values in [0, 0]",
        ),
    ],
)
def test_sampler_settings_that_do_not_fit(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dm = DigitsDataModule(**kwargs)
        dm.setup("fit")
        dm.train_dataloader()


# Row 63: a resumed run (fit --ckpt_path last) keeps the metrics.csv history of the run it continues.
def test_resuming_keeps_the_metrics_history(in_tmp):
    from tests.helpers.files import read_csv_rows

    small = ["--model.channels", "[4]", "--model.hidden", "[]", "--trainer.log_every_n_steps", "1", *QUIET]
    limits = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    CNNCli(args=["fit", "--trainer.max_epochs", "2", *limits, *small])
    metrics = in_tmp / "runs" / "lightning_cnn" / "version_0" / "metrics.csv"
    before = read_csv_rows(metrics)
    assert {row["epoch"] for row in before} == {"0", "1"}
    with open(metrics, "a") as file:  # a row the interrupted run logged after its last checkpoint
        file.write("2,99" + "," * (len(before[0]) - 2) + "\n")
    resume = ["fit", "--ckpt_path", "last", "--trainer.max_epochs", "4", "--test_after_fit", "true", *small[4:]]
    cli = CNNCli(args=resume)  # the model options come from the checkpoint
    assert cli.trainer.current_epoch == 4 and not (in_tmp / "runs" / "lightning_cnn" / "version_1").exists()
    after = read_csv_rows(metrics)
    assert [{k: row[k] for k in before[0]} for row in after[: len(before)]] == before  # in order, unchanged
    new = after[len(before) :]
    assert {row["epoch"] for row in new if row.get("val/loss")} == {"2", "3"}  # the new epochs follow
    assert all(float(row["step"]) < 99 for row in new if row["step"])  # the stale row is gone
    assert int(new[0]["step"]) > max(int(row["step"]) for row in before)
    assert any(row.get("test/acc") for row in new) and "test/acc" not in before[0]  # the columns may grow


# Row 64: two runs given the same logger version: the second is refused before it writes anything.
def test_a_run_never_overwrites_another_runs_folder(in_tmp, tmp_path_factory):
    from lightning_cnn.loggers import CSVRunLogger, RunFolderInUseError

    version = ["--trainer.logger.init_args.version", "0"]
    CNNCli(args=["fit", *version, "--model.channels", "[4]", "--model.hidden", "[]", *QUICK, *QUIET])
    run = in_tmp / "runs" / "lightning_cnn" / "version_0"
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert {"config.yaml", "hparams.yaml", "metrics.csv", "last.ckpt", "best.ckpt"} <= {p.name for p in files}
    message = (
        f"--trainer.logger.init_args.version 0: the run folder {Path('runs/lightning_cnn/version_0')} holds an"
        " earlier run's files (checkpoints, config.yaml, "
    )
    for subcommand, extra in (("fit", QUICK), ("test", ["--ckpt_path", "last"])):
        with pytest.raises(FileExistsError, match=re.escape(message)) as err:
            CNNCli(args=[subcommand, *version, *extra, *QUIET])
        assert "Give another version (or none: the next free one)" in str(err.value)
    assert "or fit --ckpt_path last to resume that run" in str(err.value) or subcommand == "test"
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files  # nothing was written
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    # In Python the default logger refuses the folder when it first writes, before its first file.
    folder = tmp_path_factory.mktemp("python")
    for attempt in range(2):
        logger = CSVRunLogger(folder, name="runs", version=0)
        trainer = pl.Trainer(
            max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=logger, enable_checkpointing=False
        )
        if attempt == 0:
            trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule())
            first = (folder / "runs" / "version_0" / "metrics.csv").read_bytes()
            continue
        with pytest.raises(RunFolderInUseError, match=re.escape("holds the files of an earlier run (hparams.yaml")):
            trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule())
        assert (folder / "runs" / "version_0" / "metrics.csv").read_bytes() == first


# Row 65: two fits with SnapshotBest and logger=False in one folder: the second keeps the first's best.ckpt.
def test_snapshot_best_never_overwrites_another_runs_best_checkpoint(fast_trainer, tmp_path):
    from lightning_cnn import SnapshotBest

    def run() -> Path:
        snap = SnapshotBest()
        fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(), fast_trainer, callbacks=[snap], logger=False)
        return Path(snap.best_model_path)

    first = run()
    assert first == tmp_path / "snapshots" / "best.ckpt"
    written = first.read_bytes()
    message = f"SnapshotBest: {tmp_path / 'snapshots'} already holds another run's best checkpoint ({first})"
    with pytest.warns(UserWarning, match=re.escape(message)):
        second = run()
    assert second == tmp_path / "snapshots" / "best-v1.ckpt" and second.is_file()
    assert first.read_bytes() == written  # the first run's file is as it wrote it
    assert run() == tmp_path / "snapshots" / "best-v2.ckpt"


# Row 66: NaN or infinite pixels from a DataModule that does not check them: refused at setup, naming the image.
def test_non_finite_training_images_are_refused_at_setup():
    class BrokenDigits(DigitsDataModule):
        def _load(self):
            x, y = super()._load()
            x = x.clone()
            x[100, 0, 2, 2] = float("nan")
            x[101, 0, 1, 1] = float("inf")
            self._images = x
            return x, y

    dm = BrokenDigits()
    with pytest.raises(ValueError, match="Expected the training images of BrokenDigits to hold finite pixel") as err:
        dm.setup("fit")
    first = min(int(np.flatnonzero(dm.split["train"] == sample)[0]) for sample in (100, 101))
    sample = int(dm.split["train"][first])
    value = "nan" if sample == 100 else "inf"
    assert f"but got {value} in image {first} of its training split (sample {sample} of the source" in str(err.value)
    assert "its normalization statistics would be NaN" in str(err.value)


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


# Row 67: evaluating a checkpoint of another DataModule with --data forgotten (it would run on the default digits).
def test_a_checkpoint_of_another_datamodule_needs_its_data(in_tmp):
    from PIL import Image

    from lightning_cnn.data.digits import load_digit_arrays

    images, labels = load_digit_arrays()
    for i in range(60):
        (in_tmp / "imgs" / str(labels[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray((images[i] * 15).astype("uint8")).save(in_tmp / "imgs" / str(labels[i]) / f"{i}.png")
    data = ["--data", "ImageFolderDataModule", "--data.root", "imgs", "--data.color", "grayscale"]
    limits = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"]
    CNNCli(args=["fit", *data, "--data.val_fraction", "0.3", "--data.test_fraction", "0.3", *limits, *QUIET])
    message = "was trained with --data ImageFolderDataModule, but no --data was given, so this run would use the"
    for subcommand in ("predict", "test", "validate"):
        with pytest.raises(ValueError, match=re.escape(message)):
            CNNCli(args=[subcommand, "--ckpt_path", "last", *QUIET])


# Row 74: LightningCLI's --optimizer / --lr_scheduler (or those keys in a config file): the model builds its own.
def test_lightning_optimizer_options_name_the_model_options(in_tmp, capsys):
    Path("opt.yaml").write_text("lr_scheduler:\n  class_path: torch.optim.lr_scheduler.StepLR\n")
    cases = [
        (["fit", "--optimizer", "SGD"], "--optimizer SGD: lightning-cnn takes the optimizer"),
        (["fit", "--lr_scheduler=StepLR"], "--lr_scheduler StepLR: lightning-cnn takes the optimizer"),
        (["fit", "--optimizer.lr", "0.1"], "--optimizer.lr 0.1: lightning-cnn takes the optimizer"),
        (["fit", "-c", "opt.yaml"], "the config key 'lr_scheduler': lightning-cnn takes the optimizer"),
    ]
    for args, start in cases:
        with pytest.raises(SystemExit) as err:
            CNNCli(args=[*args, *QUICK])
        assert err.value.code == 2
        message = capsys.readouterr().err
        assert f"error: {start}" in message and "--model.optimizer NAME" in message, message
        assert "--model.scheduler NAME" in message and "no weight decay on norms and biases" in message
    assert not (in_tmp / "runs").exists()  # refused before anything was built


# Row 80: --test_after_fit true with no test images says there is nothing to test.
def test_test_after_fit_without_test_images_says_nothing_to_test(in_tmp, caplog):
    import logging

    caplog.set_level(logging.INFO)
    args = ["fit", "--data.test_fraction", "0", "--test_after_fit", "true", *QUICK, *QUIET]
    cli = CNNCli(args=[*args, "--model.channels", "[4]", "--model.hidden", "[]"])
    assert cli.test_results is None and Path(cli.trainer.checkpoint_callback.best_model_path).is_file()
    message = (
        "Nothing to test: DigitsDataModule holds out no test images (test_fraction=0.0) and has no test set of its"
        " own. --test_after_fit skips the test."
    )
    assert message in [r.getMessage() for r in caplog.records]


# Row 81: a val/... monitor in a fit without validation watches the training metric, and says so once.
def test_validation_monitor_without_validation_falls_back_to_training(fast_trainer, caplog):
    import logging

    from lightning_cnn import SnapshotBest

    caplog.set_level(logging.INFO)
    snapshot = SnapshotBest()
    trainer = pl.Trainer(**{**fast_trainer, "callbacks": [snapshot]}, max_epochs=2, limit_train_batches=2)
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(val_fraction=0))
    message = (
        "SnapshotBest: DigitsDataModule has no validation split (val_fraction=0), so it monitors train/loss instead"
        " of val/loss."
    )
    assert [r.getMessage() for r in caplog.records].count(message) == 1
    assert snapshot.monitor == "train/loss" and Path(snapshot.best_model_path).is_file()


def _multilabel_arrays(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8)).astype(np.float32), np.stack([np.arange(n) % 2, np.arange(n) // (n // 2)], 1)


# Row 97: a label matrix that is not 0/1.
def test_a_label_matrix_that_is_not_0_1_is_refused():
    from lightning_cnn import ArrayDataModule

    x, y = _multilabel_arrays()
    y[3, 1] = 2
    message = "Expected y to be a 0/1 label matrix [N, L] (1: the image has the label), but got 2 at row 3, column 1."
    with pytest.raises(ValueError, match=re.escape(message)):
        ArrayDataModule(x, y)
    with pytest.raises(ValueError, match=re.escape("but got 0.5 at row 0, column 0.")):
        ArrayDataModule(x, np.full((40, 2), 0.5))


# Row 98: a label matrix with another row count than the images, or class_names of another length.
def test_a_label_matrix_of_another_row_count_is_refused():
    from lightning_cnn import ArrayDataModule

    x, y = _multilabel_arrays()
    with pytest.raises(
        ValueError,
        match=re.escape("Expected y to hold one row of labels per image (40), but got 39 rows (shape (39, 2))."),
    ):
        ArrayDataModule(x, y[:39])
    with pytest.raises(ValueError, match=re.escape("y has 2 label columns, but class_names has 3 names")):
        ArrayDataModule(x, y, class_names=["a", "b", "c"])


def _label_csv(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "c.png"):
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8), "L").save(root / name)
    path = root / "labels.csv"
    path.write_text("\n".join(["file,labels", *rows]) + "\n")
    return path


# Row 99: a label CSV naming a missing file.
def test_a_label_csv_naming_a_missing_file_is_refused(tmp_path):
    from lightning_cnn import CSVImageDataModule

    path = _label_csv(tmp_path, ["a.png,odd", "b.png,prime"])
    dm = CSVImageDataModule(str(path))
    with pytest.raises(FileNotFoundError, match=re.escape(f"{path}, line 3 names the image 'b.png', but")):
        dm.setup("fit")


# Row 100: a label CSV row without a label, with an empty one, or with a test label the training CSV lacks.
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.png,odd;;prime", "gives 'a.png' the labels 'odd;;prime'"),
        ("a.png,", "gives 'a.png' the labels ''"),
        ("a.png", "has 1 columns: ['a.png']"),
    ],
)
def test_a_label_csv_row_with_an_empty_label_is_refused(tmp_path, row, message):
    from lightning_cnn import CSVImageDataModule

    path = _label_csv(tmp_path, [row, "c.png,odd"])
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2 " + message)):
        CSVImageDataModule(str(path)).labels()


def test_a_test_csv_label_that_training_lacks_is_refused(tmp_path):
    from lightning_cnn import CSVImageDataModule

    train = _label_csv(tmp_path / "train", ["a.png,odd", "c.png,prime"])
    test = _label_csv(tmp_path / "test", ["a.png,odd;big"])
    dm = CSVImageDataModule(str(train), test_csv=str(test))
    with pytest.raises(ValueError, match=re.escape("gives image 0 the label 'big', which is not one of the labels")):
        dm.make_test_dataset()


# Row 101: a multiclass-only loss (or class_weights) with multi-label data.
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss": "kl_div"}, "for multi-label data (a 0/1 label matrix [N, L]), but got 'kl_div'"),
        (
            {"loss": {"cross_entropy": 1.0, "mse": 0.5}},
            "for multi-label data (a 0/1 label matrix [N, L]), but got 'mse'",
        ),
        ({"class_weights": [1.0, 2.0]}, "Expected class_weights=None for multi-label data"),
    ],
)
def test_a_multiclass_only_loss_with_multilabel_data_is_refused(fast_trainer, options, message):
    from lightning_cnn import ArrayDataModule

    x, y = _multilabel_arrays()
    model = SimpleCNN(num_classes=2, channels=(4,), hidden=(), **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(model, ArrayDataModule(x, y, batch_size=8), fast_trainer)


# Row 101: sampler="balanced" with multi-label data.
def test_a_balanced_sampler_with_multilabel_data_is_refused(fast_trainer):
    from lightning_cnn import ArrayDataModule

    x, y = _multilabel_arrays()
    message = "Expected class indices for sampler='balanced' (every class drawn equally often), but got a multi-label"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(SimpleCNN(num_classes=2, channels=(4,), hidden=()), ArrayDataModule(x, y, sampler="balanced"), fast_trainer)


# Row 102: TTA's random passes on a multi-label module.
def test_tta_random_passes_on_a_multilabel_module_are_refused(fast_trainer):
    from lightning_cnn import ArrayDataModule, TestTimeAugmentation

    x, y = _multilabel_arrays()
    model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
    tta = TestTimeAugmentation(random_passes=2, augment="flips", stages=("val",))
    message = "Expected random_passes=0 for a multi-label module (its views are merged label by label), but got"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(model, ArrayDataModule(x, y, batch_size=8), fast_trainer, callbacks=[tta])


# Row 90: a policy's magnitude outside 0..num_magnitude_bins-1, or fewer than 2 magnitude bins.
@pytest.mark.parametrize(
    ("augment", "error", "message"),
    [
        (
            {"randaugment": {"magnitude": 31}},
            ValueError,
            "Augmentation 'randaugment' in augment: Expected magnitude to be an int in 0..30 (num_magnitude_bins=31),"
            " but got 31.",
        ),
        (
            {"randaugment": {"magnitude": 5.5}},
            TypeError,
            "Expected magnitude to be an int in 0..30 (num_magnitude_bins=31), but got 5.5.",
        ),
        (
            {"randaugment": {"magnitude": 9, "num_magnitude_bins": 5}},
            ValueError,
            "Expected magnitude to be an int in 0..4 (num_magnitude_bins=5), but got 9.",
        ),
        (
            {"trivialaugment": {"num_magnitude_bins": 1}},
            ValueError,
            "Augmentation 'trivialaugment' in augment: Expected num_magnitude_bins to be an int >= 2, but got 1.",
        ),
    ],
)
def test_policy_magnitudes_out_of_range(augment, error, message):
    with pytest.raises(error, match=re.escape(message)):
        DigitsDataModule(augment=augment)


# Row 91: RandAugment's num_ops negative or not an int.
@pytest.mark.parametrize("num_ops", [-1, 1.5, True])
def test_randaugment_num_ops_must_be_a_count(num_ops):
    with pytest.raises(ValueError, match=re.escape(f"Expected num_ops to be an int >= 0, but got {num_ops!r}.")):
        DigitsDataModule(augment={"randaugment": {"num_ops": num_ops}})


# Row 92: an unknown AutoAugment policy or policy interpolation.
@pytest.mark.parametrize(
    ("augment", "message"),
    [
        (
            {"autoaugment": {"policy": "cifar"}},
            "Augmentation 'autoaugment' in augment: Expected policy to be one of ('imagenet', 'cifar10', 'svhn'),"
            " but got 'cifar'. Did you mean 'cifar10'?",
        ),
        (
            {"trivialaugment": {"interpolation": "bicubic"}},
            "Expected interpolation to be one of ('nearest', 'bilinear'), but got 'bicubic'.",
        ),
        ("randaugmnet", "a policy in ('randaugment', 'trivialaugment', 'autoaugment'), a list of augmentations"),
    ],
)
def test_unknown_policy_names(augment, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DigitsDataModule(augment=augment)


# Row 93: layer_decay outside (0, 1].
@pytest.mark.parametrize("decay", [0.0, 1.5, -0.5])
def test_layer_decay_outside_its_range(decay):
    with pytest.raises(ValueError, match=re.escape(f"Expected layer_decay to be in (0, 1], but got {decay}")):
        TransferClassifier(backbone="test_resnet", finetune="full", layer_decay=decay)


# Row 94: layer_decay on a linear probe (a frozen backbone has no stage to decay).
def test_layer_decay_on_a_linear_probe():
    message = "layer_decay=0.75 needs a fine-tuned backbone (finetune='partial', 'full' or 'gradual'), but got"
    with pytest.raises(ValueError, match=re.escape(message)):
        TransferClassifier(backbone="test_resnet", finetune="linear", layer_decay=0.75)


# Row 95: adahessian, which needs the second-order graph of every backward pass.
def test_adahessian_is_refused():
    with pytest.raises(ValueError, match=r"optimizer='adahessian' needs every backward pass .*use optimizer='adan'"):
        SimpleCNN(optimizer="adahessian").configure_optimizers()


# Row 85: a negative or non-finite mixup_alpha / cutmix_alpha: refused at construction and on the command line.
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mixup_alpha": -0.2}, "Expected mixup_alpha to be >= 0, but got -0.2."),
        ({"cutmix_alpha": float("nan")}, "Expected cutmix_alpha to be >= 0, but got nan."),
        ({"cutmix_alpha": float("inf")}, "Expected cutmix_alpha to be a finite number >= 0, but got inf."),
    ],
)
def test_a_negative_mixing_alpha_is_refused(options, message):
    with pytest.raises(ValueError) as err:
        DigitsDataModule(**options)
    assert str(err.value) == message


def test_a_negative_mixing_alpha_is_refused_on_the_command_line(in_tmp, capsys):
    with pytest.raises(SystemExit) as err:
        CNNCli(args=["fit", "--data.mixup_alpha", "-1", *QUICK, *QUIET])
    assert err.value.code == 2
    assert "Expected mixup_alpha to be >= 0, but got -1" in capsys.readouterr().err


# Row 86: mix_prob or mix_switch_prob outside [0, 1].
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mixup_alpha": 0.2, "mix_prob": 1.5}, "Expected mix_prob to be in [0, 1], but got 1.5."),
        ({"cutmix_alpha": 1.0, "mix_switch_prob": -0.1}, "Expected mix_switch_prob to be in [0, 1], but got -0.1."),
    ],
)
def test_a_mixing_probability_outside_0_1_is_refused(options, message):
    with pytest.raises(ValueError) as err:
        DigitsDataModule(**options)
    assert str(err.value) == message
    with pytest.raises(ValueError, match=re.escape(message)):  # every source takes the shared arguments
        ImageFolderDataModule(root=".", **options)


# Row 87: mixing batches that carry no labels (a DataModule subclass whose training batches are images alone).
def test_mixing_a_batch_without_labels_is_refused():
    dm = DigitsDataModule(mixup_alpha=0.2)
    with pytest.raises(ValueError, match=re.escape("Expected labelled training batches (x, y) to mix")):
        dm.mix_batch(torch.rand(4, 1, 8, 8), [], rank=0)


# Row 88: Lightning's own EMAWeightAveraging (it copies the module before the module's setup) with our modules.
def test_lightnings_own_ema_is_refused_at_setup_naming_ours(fast_trainer):
    from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMA

    with pytest.raises(ValueError) as err:
        fit(SimpleCNN(channels=(4,), hidden=()), DigitsDataModule(), fast_trainer, callbacks=[LightningEMA()])
    assert str(err.value).startswith("EMAWeightAveraging copied the SimpleCNN in its setup, before the module's own")
    assert "Use lightning_cnn.EMAWeightAveraging" in str(err.value)


def _two_class_folder(root: Path, size: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


# Row 103: convert a source that is none of 'digits', an image folder, an .npz file; image_size with an .npz.
def test_convert_refuses_a_source_it_cannot_read(tmp_path):
    from lightning_cnn.convert import convert_dataset

    with pytest.raises(FileNotFoundError, match=r"Expected source to be 'digits', a folder of class subfolders or an"):
        convert_dataset(str(tmp_path / "nothing"), str(tmp_path / "out"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"but '.*notes.txt' is a file ending in '.txt'"):
        convert_dataset(str(tmp_path / "notes.txt"), str(tmp_path / "out"))
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 1, 4, 4), np.uint8), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"Expected no image_size or color with an .npz source .*image_size=16"):
        convert_dataset(str(tmp_path / "a.npz"), str(tmp_path / "out"), image_size=16)
    with pytest.raises(ValueError, match=re.escape("Expected dtype to be one of ('auto', 'uint8', 'float32')")):
        convert_dataset("digits", str(tmp_path / "out"), dtype="int8")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


# Row 104: convert into a folder that holds files (without overwrite), or onto a file.
def test_convert_refuses_an_output_that_holds_files(tmp_path):
    from lightning_cnn.convert import convert_dataset

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"Expected output to be a new or empty folder, but '.*out' holds files"):
        convert_dataset("digits", str(tmp_path / "out"))
    with pytest.raises(FileExistsError, match=r"Expected output to be a folder to write, but '.*keep.txt' is a file"):
        convert_dataset("digits", str(tmp_path / "out" / "keep.txt"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


# Row 105: a sample convert cannot store (unreadable, another size, pixels that are not 8-bit with dtype='uint8').
@pytest.mark.parametrize("bad", ["unreadable", "size", "not_8bit"])
def test_convert_names_the_sample_it_cannot_store_and_leaves_nothing(tmp_path, bad):
    from lightning_cnn.convert import convert_dataset

    root = _two_class_folder(tmp_path / "imgs")
    options: dict = {"num_workers": 2}
    if bad == "unreadable":
        (root / "b" / "2.png").write_text("not an image")
        message = r"1 of 6 samples failed, nothing was written\. The first, sample 5 \(.*b/2\.png\): Cannot read image"
    elif bad == "size":
        Image.fromarray(np.zeros((5, 7), np.uint8)).save(root / "b" / "2.png")
        message = r"sample 5 \(.*b/2\.png\): its image is \[3, 5, 7\] .*but the first is \[3, 6, 6\]: pass image_size"
    else:
        options.update(image_size=6, dtype="uint8")
        Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(root / "a" / "1.png")
        message = r"sample 1 \(.*a/1\.png\): its pixels are not 8-bit .*dtype='float32'"
    with pytest.raises(ValueError, match=message):
        convert_dataset(str(root), str(tmp_path / "out"), **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]  # no output, no partial folder


# Row 106: StreamingDataModule on a folder that convert did not write.
def test_streaming_datamodule_refuses_a_folder_without_a_converted_dataset(tmp_path):
    from lightning_cnn import StreamingDataModule

    with pytest.raises(FileNotFoundError, match=r"root=.* has no index.json, lightning_cnn.json, labels.npy\. Convert"):
        StreamingDataModule(str(_two_class_folder(tmp_path / "imgs")))
    with pytest.raises(FileNotFoundError, match=r"Expected root to be a folder written by lightning-cnn convert"):
        StreamingDataModule(str(tmp_path / "missing"))


# Row 107: convert or StreamingDataModule without litdata installed.
def test_streaming_without_litdata_names_the_extra(tmp_path, monkeypatch):
    import sys

    from lightning_cnn import StreamingDataModule
    from lightning_cnn.convert import convert_dataset

    monkeypatch.setitem(sys.modules, "litdata", None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("StreamingDataModule needs litdata, which is not")):
        StreamingDataModule(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'lightning-cnn[streaming]'")):
        convert_dataset("digits", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# Row 108: order='streaming' with device_resident=True or a balanced or weighted sampler; an unknown order.
def test_streaming_order_refuses_settings_it_cannot_draw(tmp_path):
    from lightning_cnn import StreamingDataModule
    from lightning_cnn.convert import convert_dataset

    root = str(convert_dataset("digits", str(tmp_path / "d"), num_workers=1))
    with pytest.raises(ValueError, match=r"Expected order='seeded' with device_resident=True, but got order='stream"):
        StreamingDataModule(root, order="streaming", device_resident=True)
    with pytest.raises(ValueError, match=r"Expected order='seeded' with sampler='balanced', but got order='streaming'"):
        StreamingDataModule(root, order="streaming", sampler="balanced")
    with pytest.raises(ValueError, match=re.escape("Expected order to be one of ('seeded', 'streaming')")):
        StreamingDataModule(root, order="stream")  # type: ignore[arg-type]


# Row 109: classify given a 4-D array of no telling layout, or an unknown layout.
def test_classify_refuses_an_array_of_no_telling_layout():
    import numpy as np

    from lightning_cnn import classify

    model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
    model.input_contract.learn({"normalize": "instance", "in_channels": 1, "image_size": 5})
    with pytest.raises(ValueError, match=re.escape("but got shape (2, 4, 4, 4). Pass layout='channels_first'")):
        classify(model, np.zeros((2, 4, 4, 4), dtype=np.float32))
    assert classify(model, np.zeros((2, 4, 4, 4), dtype=np.float32), layout="channels_first").probabilities.shape == (
        2,
        2,
    )
    with pytest.raises(ValueError, match=re.escape("Expected layout to be one of ('auto', 'channels_first'")):
        classify(model, np.zeros((2, 5, 5, 1)), layout="nchw")  # type: ignore[arg-type]
