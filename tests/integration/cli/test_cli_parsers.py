"""A start builds the full parser of the subcommand it runs only; what any command prints stays the same."""

from __future__ import annotations

import pytest

from lightning_cnn.cli import CNNCli, app
from lightning_cnn.cli.entry import main


class NotRun(CNNCli):
    """The command line up to the classes built, without running the subcommand."""

    def _run_subcommand(self, subcommand: str) -> None:
        self.ran = subcommand


def _printed(capsys, monkeypatch, args: list[str], every_parser: bool) -> str:
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as ended:
        if every_parser:  # as before: every subcommand's parser built in full
            patch.setattr(app, "subcommands_to_build", lambda args, names: set(names))
        main(args)
    assert ended.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [["--help"], ["fit", "--help"], ["test", "--help"], ["fit", "--print_config"], ["predict", "--print_config"]],
    ids=" ".join,
)
def test_help_and_print_config_are_those_of_every_parser_built(in_tmp, capsys, monkeypatch, args):
    lean = _printed(capsys, monkeypatch, args, every_parser=False)
    full = _printed(capsys, monkeypatch, args, every_parser=True)
    assert lean == full
    assert "fit" in lean and len(lean.splitlines()) > 20


def _options(cli: CNNCli, subcommand: str) -> set[str]:
    return {key.split(".")[0] for key in cli._subcommand_parsers[subcommand].get_defaults().keys()}


def test_only_the_running_subcommand_has_its_options(in_tmp):
    cli = NotRun(args=["validate", "--allow_untrained", "true", "--trainer.logger", "false"])
    assert cli.ran == "validate"
    assert {"trainer", "model", "data", "checkpoint", "defaults", "allow_untrained"} <= _options(cli, "validate")
    for other in ("fit", "test", "predict"):
        assert "trainer" not in _options(cli, other) and "model" not in _options(cli, other)
    assert cli.config["validate"]["trainer"]["max_epochs"] == 20  # the running parser keeps our Trainer defaults


def test_a_config_file_before_the_subcommand_keeps_every_parser(in_tmp, tmp_path):
    config = tmp_path / "top.yaml"
    config.write_text("fit:\n  trainer:\n    logger: false\n    max_epochs: 3\n")
    cli = NotRun(args=["--config", str(config), "fit"])
    assert cli.ran == "fit" and cli.config["fit"]["trainer"]["max_epochs"] == 3
    for every in ("fit", "validate", "test", "predict"):
        assert "trainer" in _options(cli, every)
