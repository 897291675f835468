"""The default callbacks and plugin are options (``--defaults.*``); runs go under ``--trainer.default_root_dir``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.callbacks import ModelSummary, ProgressBar, RichProgressBar, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_cnn import AugmentationPreview, FiniteLossGuard, PredictionWriter, RunSummary, TrainingPlots
from lightning_cnn.checkpoint import AtomicCheckpointIO
from lightning_cnn.cli import CNNCli
from lightning_cnn.cli.defaults import DEFAULTS
from lightning_cnn.cli.output import ModelSummaryTable

QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
AUGMENTS = ["--data.augment", "light"]  # so that the augmentation preview is among the defaults

#: Each default, the class of ours, and whether it is a plugin (checkpoint IO) rather than a callback.
OURS = {
    "run_summary": RunSummary,
    "training_plots": TrainingPlots,
    "finite_loss_guard": FiniteLossGuard,
    "augmentation_preview": AugmentationPreview,
    "progress_bar": RichProgressBar,
    "model_summary": ModelSummaryTable,
    "prediction_writer": PredictionWriter,
    "checkpoint_io": AtomicCheckpointIO,
}


def built(*args: str) -> CNNCli:
    return CNNCli(args=[*AUGMENTS, *args], run=False)


def kinds(cli: CNNCli) -> list[type]:
    return [type(c) for c in cli.trainer.callbacks]


def test_every_default_is_named_here():
    assert [d.name for d in DEFAULTS] == list(OURS)


def test_without_switches_every_default_is_in_the_trainer(in_tmp):
    cli = built()
    for name, cls in OURS.items():
        if name == "checkpoint_io":
            assert isinstance(cli.trainer.strategy.checkpoint_io, cls)
        else:
            assert kinds(cli).count(cls) == 1, name


@pytest.mark.parametrize("name", list(OURS))
def test_each_default_switches_off_from_the_command_line(in_tmp, name):
    cli = built(f"--defaults.{name}", "null")
    if name == "checkpoint_io":
        assert type(cli.trainer.strategy.checkpoint_io) is TorchCheckpointIO
        assert RunSummary in kinds(cli)
        return
    assert OURS[name] not in kinds(cli)
    lightnings = {"progress_bar": ProgressBar, "model_summary": ModelSummary}  # nor does Lightning add its own
    if name in lightnings:
        assert not any(issubclass(k, lightnings[name]) for k in kinds(cli))
    others = [cls for other, cls in OURS.items() if other not in (name, "checkpoint_io")]
    assert all(cls in kinds(cli) for cls in others)  # only that one is off
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.parametrize("name", list(OURS))
def test_each_default_switches_off_from_yaml(in_tmp, name):
    Path("off.yaml").write_text(yaml.safe_dump({"defaults": {name: None}}))
    cli = built("-c", "off.yaml")
    if name == "checkpoint_io":
        assert type(cli.trainer.strategy.checkpoint_io) is TorchCheckpointIO
    else:
        assert OURS[name] not in kinds(cli)
        assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_lightning_switches_still_turn_off_the_bar_and_the_summary(in_tmp):
    cli = built(*QUIET)
    assert RichProgressBar not in kinds(cli) and ModelSummaryTable not in kinds(cli)
    assert RunSummary in kinds(cli)


def test_a_default_takes_options_and_another_class(in_tmp):
    cli = built("--defaults.augmentation_preview.scale", "3", "--defaults.progress_bar", "TQDMProgressBar")
    preview = [c for c in cli.trainer.callbacks if isinstance(c, AugmentationPreview)]
    assert [p.scale for p in preview] == [3]  # given: not grown to 64-pixel tiles
    assert TQDMProgressBar in kinds(cli) and RichProgressBar not in kinds(cli)
    grown = built()
    assert [c.scale for c in grown.trainer.callbacks if isinstance(c, AugmentationPreview)] == [8]  # 8x8 digits


def test_callbacks_given_append_to_the_defaults_and_one_of_a_kind_replaces_ours(in_tmp):
    cli = built(
        "--trainer.callbacks+=TQDMProgressBar",
        "--trainer.callbacks+=FiniteLossGuard",
        "--trainer.callbacks.check_every_n_steps",
        "5",
    )
    assert kinds(cli).count(FiniteLossGuard) == 1
    guard = next(c for c in cli.trainer.callbacks if isinstance(c, FiniteLossGuard))
    assert guard.check_every_n_steps == 5
    assert TQDMProgressBar in kinds(cli) and RichProgressBar not in kinds(cli)
    assert {RunSummary, TrainingPlots, AugmentationPreview, ModelSummaryTable} <= set(kinds(cli))


def test_only_predict_writes_predictions_and_only_an_augmenting_fit_previews(in_tmp, capsys):
    with pytest.raises(SystemExit):
        CNNCli(args=["fit", "--print_config"])
    fit = yaml.safe_load(capsys.readouterr().out)["defaults"]
    assert "prediction_writer" not in fit and fit["augmentation_preview"]["class_path"].endswith("AugmentationPreview")
    with pytest.raises(SystemExit):
        CNNCli(args=["predict", "--print_config"])
    predict = yaml.safe_load(capsys.readouterr().out)["defaults"]
    assert predict["prediction_writer"]["init_args"]["strict"] is False
    assert "augmentation_preview" not in predict and "model_summary" not in predict
    plain = CNNCli(args=[], run=False)  # no augmentation: no preview
    assert AugmentationPreview not in kinds(plain)


def test_print_config_and_the_saved_config_list_the_defaults(in_tmp, capsys):
    with pytest.raises(SystemExit):
        CNNCli(args=["fit", "--defaults.finite_loss_guard", "null", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)["defaults"]
    assert printed["finite_loss_guard"] is None
    assert printed["run_summary"] == {"class_path": "lightning_cnn.RunSummary"}
    assert printed["checkpoint_io"] == {"class_path": "lightning_cnn.AtomicCheckpointIO"}
    cli = CNNCli(args=["fit", "--defaults.finite_loss_guard", "null", *QUICK, *QUIET])
    saved = yaml.safe_load((Path(cli.trainer.log_dir) / "config.yaml").read_text())["defaults"]
    assert saved["finite_loss_guard"] is None and saved["progress_bar"]["class_path"].endswith("RichProgressBar")
    assert FiniteLossGuard not in kinds(cli)


def _metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_fit_with_a_finished_runs_config_reproduces_it(in_tmp):
    args = ["fit", *AUGMENTS, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", *QUICK[4:], *QUIET]
    first = CNNCli(args=[*args, "--seed_everything", "7", "--defaults.training_plots", "null"])
    run = Path(first.trainer.log_dir)
    again = CNNCli(args=["fit", "-c", str(run / "config.yaml")])
    rerun = Path(again.trainer.log_dir)
    assert rerun != run and rerun.parent == run.parent  # a new run folder beside the first
    assert again.config["fit"]["seed_everything"] == 7 and TrainingPlots not in kinds(again)
    rows, rows_again = _metrics(run), _metrics(rerun)
    assert len(rows) == 2 * 2 and rows == rows_again  # two epochs: train and val rows, every value equal
    assert float(rows[-2]["val/loss"] or rows[-1]["val/loss"]) > 0


def test_the_default_root_dir_holds_the_run_and_ckpt_path_last_finds_it(in_tmp):
    cli = CNNCli(args=["fit", "--trainer.default_root_dir", "elsewhere", *QUICK, *QUIET])
    run = in_tmp / "elsewhere" / "lightning_cnn" / "version_0"
    assert Path(cli.trainer.log_dir).resolve() == run and (run / "checkpoints" / "last.ckpt").is_file()
    assert not (in_tmp / "runs").exists()
    more = ["--trainer.max_epochs", "2", *QUICK[2:], *QUIET]
    resumed = CNNCli(args=["fit", "--trainer.default_root_dir", "elsewhere", "--ckpt_path", "last", *more])
    assert resumed.trainer.global_step == 4 and Path(resumed.trainer.log_dir).resolve() == run
    tested = CNNCli(
        args=[
            "test",
            "--trainer.default_root_dir",
            "elsewhere",
            "--ckpt_path",
            "last",
            *QUIET,
            "--trainer.limit_test_batches",
            "1",
        ]
    )
    assert Path(tested.config["test"]["ckpt_path"]).resolve() == run / "checkpoints" / "last.ckpt"
    with pytest.raises(FileNotFoundError, match="no last.ckpt under nowhere/lightning_cnn/version_"):
        CNNCli(args=["fit", "--trainer.default_root_dir", "nowhere", "--ckpt_path", "last", *QUICK, *QUIET])


def test_an_explicit_save_dir_wins_over_the_default_root_dir(in_tmp):
    root = ["--trainer.default_root_dir", "root"]
    cli = CNNCli(args=["fit", *root, "--trainer.logger.init_args.save_dir", "mine", *QUICK, *QUIET])
    assert Path(cli.trainer.log_dir).resolve() == in_tmp / "mine" / "lightning_cnn" / "version_0"
    Path("logger.yaml").write_text(yaml.safe_dump({"trainer": {"logger": {"init_args": {"save_dir": "fromyaml"}}}}))
    from_yaml = CNNCli(args=["-c", "logger.yaml", *root], run=False)
    assert from_yaml.config["trainer"]["logger"]["init_args"]["save_dir"] == "fromyaml"
    plain = CNNCli(args=[], run=False)
    assert plain.config["trainer"]["logger"]["init_args"]["save_dir"] == "runs"
