"""The command line's decisions without Lightning: given save_dir, refused optimizer options, their messages."""

from __future__ import annotations

import pytest
import yaml

from lightning_cnn._utils.command_line import (
    explain_parser_error,
    optimizer_options_message,
    refuse_lightning_optimizer_options,
    save_dir_given,
    subcommands_to_build,
)


def _write(path, value):
    path.write_text(yaml.safe_dump(value))
    return str(path)


def test_save_dir_given_on_the_command_line():
    assert save_dir_given(["fit", "--trainer.logger.save_dir", "x"])
    assert save_dir_given(["fit", "--trainer.logger.init_args.save_dir=x"])
    assert save_dir_given(["fit", "--trainer.logger", '{"class_path": "CSVLogger", "init_args": {"save_dir": "x"}}'])
    assert not save_dir_given(["fit", "--trainer.default_root_dir", "x", "--trainer.logger.init_args.name", "n"])
    assert not save_dir_given(["fit", "--model.save_dir", "x"])


def test_save_dir_given_in_config_files(tmp_path):
    with_dir = _write(tmp_path / "a.yaml", {"trainer": {"logger": {"init_args": {"save_dir": "x"}}}})
    trainer_file = _write(tmp_path / "t.yaml", {"logger": {"save_dir": "x"}})
    without = _write(tmp_path / "b.yaml", {"trainer": {"max_epochs": 2}, "model": {"save_dir": "not the logger's"}})
    assert save_dir_given(["fit", "-c", with_dir]) and save_dir_given(["fit", f"--config={with_dir}"])
    assert save_dir_given(["fit", "--trainer", trainer_file])
    assert not save_dir_given(["fit", "-c", without]) and not save_dir_given(["fit", "-c", str(tmp_path / "none")])


def test_optimizer_options_are_refused_with_their_value():
    calls: list[str] = []
    refuse_lightning_optimizer_options(["fit", "--model.optimizer", "sgd", "--model.scheduler", "cosine"], calls.append)
    assert calls == []
    refuse_lightning_optimizer_options(["fit", "--optimizer", "SGD"], calls.append)
    refuse_lightning_optimizer_options(["fit", "--lr_scheduler.step_size=3"], calls.append)
    refuse_lightning_optimizer_options(["fit", "--optimizer", "--trainer.max_epochs", "2"], calls.append)
    assert [c.split(":")[0] for c in calls] == ["--optimizer SGD", "--lr_scheduler.step_size 3", "--optimizer"]
    assert all("--model.optimizer NAME" in c and "--model.scheduler NAME" in c for c in calls)


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("Subcommand 'fit' does not accept option 'lr_scheduler'", "lr_scheduler"),
        ("Subcommand 'fit' does not accept option 'optimizer.class_path'", "optimizer"),
        ("Option 'optimizer.class_path' is not accepted before subcommand 'fit'", "optimizer"),
    ],
)
def test_config_keys_of_lightnings_optimizer_are_explained(message, key):
    assert explain_parser_error(message, {}) == optimizer_options_message(f"the config key {key!r}")


def test_other_unknown_options_are_left_alone():
    message = "Subcommand 'fit' does not accept option 'optimizers'"
    assert explain_parser_error(message, {}) == message


@pytest.mark.parametrize(
    ("args", "built"),
    [
        (["fit", "--trainer.max_epochs", "3"], {"fit"}),
        (["test", "--help"], {"test"}),
        (["--help"], set()),
        (["-h"], set()),
        ([], set()),
        (["-c", "run.yaml", "fit"], {"fit", "test"}),  # the subcommand may come from the file
        (["--fit"], {"fit", "test"}),
        ({"fit": {}}, {"fit", "test"}),  # a dict of options (LightningCLI takes one)
    ],
)
def test_subcommands_to_build(args, built):
    assert subcommands_to_build(args, ("fit", "test")) == built
