"""The ``lightning-cnn`` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lightning_cnn.cli import CNNCli

QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def run_cli(*args: str) -> CNNCli:
    return CNNCli(args=list(args))


def test_console_script_and_module_help_list_model_and_data_options():
    exe = Path(sys.executable).with_name("lightning-cnn")
    top = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    fit = subprocess.run(
        [sys.executable, "-m", "lightning_cnn", "fit", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for text in (top, fit):
        assert "SimpleCNN: num_classes, in_channels, channels, kernel_size" in text
        assert "DigitsDataModule: batch_size, val_fraction, test_fraction, split_seed" in text
    assert "--model CONFIG | CLASS_PATH_OR_NAME" in fit and "--trainer.max_epochs" in fit


def test_model_help_lists_valid_choices():
    out = subprocess.run(
        [sys.executable, "-m", "lightning_cnn", "fit", "--model.help", "SimpleCNN"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "{relu,relu6,leaky_relu,elu,selu,celu,gelu,silu,mish,hardswish,softplus,tanh,sigmoid,prelu,identity}" in out
    assert "{max,avg,fractional_max,none}" in out
    assert "sparse_adam" in out and "lbfgs" in out


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [
        ("--model.activation", "relux", "leaky_relu"),
        ("--model.pool", "maxx", "fractional_max"),
        ("--model.norm", "batchnorm", "instance"),
        ("--model.optimizer", "adamm", "rmsprop"),
        ("--model.loss", "crossentropy", "pseudo_huber"),
    ],
)
def test_bad_choice_fails_before_training_and_lists_the_choices(in_tmp, capsys, option, value, listed):
    with pytest.raises(SystemExit) as err:
        run_cli("fit", option, value, *QUICK)
    assert err.value.code != 0
    message = capsys.readouterr().err
    assert value in message and listed in message
    assert not (in_tmp / "runs").exists()  # nothing was trained or written


def test_print_config_round_trip(in_tmp, capsys):
    with pytest.raises(SystemExit) as err:
        run_cli("fit", "--model.channels", "[8, 16]", "--print_config")
    assert err.value.code == 0
    cfg_text = capsys.readouterr().out
    cfg = yaml.safe_load(cfg_text)
    assert cfg["model"]["class_path"] == "lightning_cnn.SimpleCNN"
    assert cfg["model"]["init_args"]["channels"] == [8, 16]
    (in_tmp / "cfg.yaml").write_text(cfg_text)
    cli = run_cli("fit", "-c", "cfg.yaml", *QUICK, *QUIET)
    assert cli.trainer.current_epoch == 1
    assert cli.model.hparams["channels"] == [8, 16]


def test_data_links_into_model(in_tmp):
    cli = run_cli("fit", "--data.rgb", "true", "--data.image_size", "16", *QUICK, *QUIET)
    assert cli.model.hparams["in_channels"] == 3
    assert cli.model.hparams["num_classes"] == 10


def test_augmenting_run_writes_the_augmentation_preview(in_tmp):
    cli = run_cli("fit", "--data.augment", "light", *QUICK, *QUIET)
    preview = Path(cli.trainer.log_dir) / "augment_preview.png"
    assert preview.is_file() and min(Image.open(preview).size) >= 64
    assert np.asarray(Image.open(preview).convert("L"), dtype=np.float32).std() > 10  # not blank


def test_test_with_a_different_split_is_refused(in_tmp):
    cli = run_cli("fit", *QUICK, *QUIET)
    best = cli.trainer.checkpoint_callback.best_model_path
    with pytest.raises(ValueError, match="trained with split_seed=0, but this DigitsDataModule has split_seed=1"):
        run_cli("test", "--ckpt_path", best, "--data.split_seed", "1", *QUIET)


def test_fit_without_checkpointing_runs(in_tmp):
    cli = run_cli("fit", "--trainer.enable_checkpointing", "false", *QUICK, *QUIET)
    assert cli.trainer.checkpoint_callback is None and cli.trainer.current_epoch == 1
    assert not list(in_tmp.rglob("*.ckpt"))


def test_resume_last_from_a_checkpoint_folder_of_its_own(in_tmp):
    first = run_cli("fit", "--checkpoint.dirpath", "seed0", *QUICK, *QUIET)
    assert (in_tmp / "seed0" / "last.ckpt").is_file() and first.trainer.global_step == 3
    more = ["--trainer.max_epochs", "2", *QUICK[2:]]
    resumed = run_cli("fit", "--checkpoint.dirpath", "seed0", "--ckpt_path", "last", *more, *QUIET)
    assert resumed.trainer.global_step == 6  # continued from step 3, not from scratch
    with pytest.raises(FileNotFoundError, match="--ckpt_path last: no last.ckpt in --checkpoint.dirpath other"):
        run_cli("fit", "--checkpoint.dirpath", "other", "--ckpt_path", "last", *QUICK, *QUIET)


def test_the_snapshot_example_writes_one_best_checkpoint_beside_last(in_tmp, capsys):
    example = Path(__file__).resolve().parents[3] / "examples" / "early_stopping_snapshot.yaml"
    cli = run_cli("fit", "-c", str(example), "--test_after_fit", "true", *QUICK, *QUIET)
    run = in_tmp / "runs" / "lightning_cnn" / "version_0"
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*.ckpt")) == [
        "checkpoints/last.ckpt",
        "snapshots/best.ckpt",
    ]
    assert f"Best checkpoint: {run / 'snapshots' / 'best.ckpt'}" in capsys.readouterr().out
    assert cli.test_results and "test/acc" in cli.test_results[0]
    resumed = run_cli("fit", "-c", str(example), "--ckpt_path", "last", "--trainer.max_epochs", "2", *QUICK[2:], *QUIET)
    assert resumed.trainer.global_step == 6  # last.ckpt is still written, so the run resumes
