"""The ``lightning-cnn`` command line: a LightningCLI with SimpleCNN on digits as its defaults."""

from __future__ import annotations

import inspect
import sys
import time
from argparse import RawDescriptionHelpFormatter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.rank_zero import rank_zero_info

import lightning_cnn  # noqa: F401  (registers the short class names for --model and --data)
from lightning_cnn._utils.command_line import (
    EVALUATING_SUBCOMMANDS,
    PARSER_MODE,
    check_data_of_checkpoint,
    check_run_folder,
    constructor_error,
    evaluated_checkpoint,
    expand_short_callback_names,
    refuse_lightning_optimizer_options,
    subcommands_to_build,
)
from lightning_cnn._utils.io import check_checkpoint_complete, unreadable_checkpoint
from lightning_cnn._utils.restore import restoring_weights
from lightning_cnn._utils.training_only import fall_back_without_validation, nothing_to_test
from lightning_cnn.callbacks import SnapshotBest
from lightning_cnn.cli.checks import (
    DEFAULT_SAVE_DIR,
    check_accelerator,
    data_from_checkpoint,
    link_backbone_input_size,
    resume_last_run,
    use_default_root_dir,
)
from lightning_cnn.cli.defaults import add_defaults, class_default, default_callbacks, default_plugins
from lightning_cnn.cli.output import quiet_known_notices
from lightning_cnn.cli.parser import CNNParser, catalogue
from lightning_cnn.data import ClassifierDataModule, DigitsDataModule
from lightning_cnn.loggers import CSVRunLogger
from lightning_cnn.models import ClassifierModule, SimpleCNN, TransferClassifier
from lightning_cnn.models.contract import InputContract, check_contract

__all__ = ["CNNCli", "trainer_defaults"]


def trainer_defaults() -> dict[str, Any]:
    """The Trainer options that differ from Lightning's: 20 epochs, and the CSV logger under ``runs/``."""
    return {
        "max_epochs": 20,
        "log_every_n_steps": 10,
        "logger": class_default(CSVRunLogger, save_dir=DEFAULT_SAVE_DIR, name="lightning_cnn"),
    }


class CNNCli(LightningCLI):
    """LightningCLI with short class names, data-to-model links and a best-checkpoint callback.

    ``--model`` takes any :class:`~lightning_cnn.ClassifierModule` subclass (default ``SimpleCNN``) and
    ``--data`` any :class:`~lightning_cnn.ClassifierDataModule` subclass (default ``DigitsDataModule``).
    ``num_classes`` and ``in_channels`` flow from the data to the model. The checkpoint of the best
    validation epoch (``--checkpoint.monitor``, default ``val/loss``) is saved as ``best.ckpt`` under the
    run folder, beside ``last.ckpt``. ``fit --test_after_fit true`` tests the best checkpoint when
    training ends and prints where the checkpoint and logs are. The callbacks and checkpoint plugin every run gets
    are ``--defaults.*`` options (:mod:`lightning_cnn.cli.defaults`); runs go under ``--trainer.default_root_dir``
    when one is given (else ``runs/``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", ClassifierModule)
        kwargs.setdefault("datamodule_class", ClassifierDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("seed_everything_default", 0)
        kwargs.setdefault("trainer_defaults", trainer_defaults())
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_class", CNNParser)
        epilog = catalogue()
        quiet_known_notices()
        given = inspect.signature(LightningCLI.__init__).bind_partial(self, *args, **kwargs).arguments.get("args")
        self._full_parsers = subcommands_to_build(sys.argv[1:] if given is None else given, self.subcommands())
        kwargs.setdefault(
            "parser_kwargs",
            {"epilog": epilog, "formatter_class": RawDescriptionHelpFormatter, "parser_mode": PARSER_MODE}
            | {cmd: {"epilog": epilog, "formatter_class": RawDescriptionHelpFormatter} for cmd in self.subcommands()},
        )
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "model": {"class_path": f"{SimpleCNN.__module__}.SimpleCNN"},
                "data": {"class_path": f"{DigitsDataModule.__module__}.DigitsDataModule"},
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.in_channels", "model.init_args.in_channels", apply_on="instantiate")

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        """The parsers, each with the ``--defaults.*`` of its subcommand (all of them with ``run=False``)."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if add_subcommands:
            for name, subparser in self._subcommand_parsers.items():
                if name in self._full_parsers:
                    add_defaults(subparser, name)
        else:
            add_defaults(self.parser, None)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        """The subcommand's parser; one this start never reads (another subcommand runs) is left without options.

        Building a parser reads the signatures and docstrings of the Trainer, model and data classes; a start reads one
        subcommand's parser at most, and ``--help`` none.
        """
        if subcommand in self._full_parsers:
            return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        self._subcommand_method_arguments[subcommand] = []
        return self.init_parser(**kwargs)

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        super()._add_subcommands(parser, **kwargs)
        fit = self._subcommand_parsers["fit"]
        fit.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, test the best checkpoint and print where it and the logs are.",
        )
        for name in EVALUATING_SUBCOMMANDS:
            self._subcommand_parsers[name].add_argument(
                "--allow_untrained",
                type=bool,
                default=False,
                help=f"{name} without --ckpt_path evaluates the model's initial (untrained) weights: refused unless"
                " this is true.",
            )

    test_results: list[Mapping[str, float]] | None = None

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if args is None or isinstance(args, (list, tuple)):
            argv = list(sys.argv[1:] if args is None else args)
            self._data_given = any(a.split("=")[0] in ("--data", "-c", "--config") for a in argv)
            refuse_lightning_optimizer_options(argv, parser.error)
            self.config = parser.parse_args(expand_short_callback_names(argv))
            subcommand = self.config.get("subcommand")  # before anything looks for runs: --ckpt_path last, run folders
            use_default_root_dir(self.config[subcommand] if subcommand else self.config, argv)
        else:
            super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` (and refuse untrained weights) first, then read the checkpoint's model options.

        Lightning reads the hyperparameters of a ``--ckpt_path`` file into the config; a file it cannot read is named.
        """
        subcommand = self.config.get("subcommand")
        if subcommand in EVALUATING_SUBCOMMANDS:
            self._last_ckpt = evaluated_checkpoint(subcommand, self.config[subcommand])
        elif subcommand == "fit":  # resume the newest run, with the model options it was trained with
            self._last_ckpt = resume_last_run(self.config[subcommand])
            if self._last_ckpt is not None:  # an unreadable last.ckpt is named before the run's folder is opened
                check_checkpoint_complete(self._last_ckpt)
                self.config[subcommand]["ckpt_path"] = str(self._last_ckpt)
        try:
            super()._parse_ckpt_path()
        except Exception as err:
            path = self.config[subcommand].get("ckpt_path")
            wrapped = unreadable_checkpoint(path, err, name_others=True) if path else None
            if wrapped is None:
                raise
            raise wrapped from err

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Build the trainer with our checkpointing and the ``--defaults.*`` callbacks and plugin still switched on."""
        extra = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        if config.get("enable_checkpointing") is False:  # then Lightning refuses any ModelCheckpoint
            extra = [c for c in extra if not isinstance(c, ModelCheckpoint)]
        given = config.get("callbacks") or []
        if any(isinstance(c, ModelCheckpoint) for c in given):  # the user's own checkpointing replaces ours
            extra = [c for c in extra if not isinstance(c, ModelCheckpoint)]
        elif any(isinstance(c, SnapshotBest) for c in given):  # it writes the best checkpoint: ours keeps last.ckpt
            for c in extra:
                if isinstance(c, ModelCheckpoint):
                    c.save_top_k = 0
        defaults = self._get(self.config_init, "defaults", default=None)
        extra += default_callbacks(defaults, config, getattr(self, "datamodule", None), self.subcommand)
        config["plugins"] = default_plugins(defaults, config.get("plugins")) or None
        return self._instantiate_trainer(config, extra)

    def instantiate_classes(self) -> None:
        """Build the classes; a model restored from ``--ckpt_path`` reads no weights file and downloads nothing."""
        ckpt_path = self.config[self.subcommand].get("ckpt_path") if self.subcommand else None
        try:
            if self._resolved_ckpt(ckpt_path) is not None:  # the checkpoint's state dict replaces every tensor
                with restoring_weights():
                    super().instantiate_classes()
            else:
                super().instantiate_classes()
        except (ValueError, TypeError) as err:  # a bad value ends like a parser error: exit 2, one message
            found = constructor_error(err, {"model": LightningModule, "data": LightningDataModule})
            if found is None:
                raise
            group, cause = found
            self._parser(self.subcommand).error(f"--{group}: {cause}", err)

    def _resolved_ckpt(self, ckpt_path: Any) -> Path | None:
        """The checkpoint file ``--ckpt_path`` will load, when known before the classes are built."""
        if not ckpt_path:
            return None
        if ckpt_path == "last":
            return getattr(self, "_last_ckpt", None)
        path = Path(str(ckpt_path))
        return path if path.is_file() else None

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:
            return
        check_accelerator(self.config[self.subcommand])
        link_backbone_input_size(self.config[self.subcommand])
        check_run_folder(self.subcommand, self.config[self.subcommand])  # another run's files are never overwritten
        for message in fall_back_without_validation(self.config["fit"]) if self.subcommand == "fit" else ():
            rank_zero_info(message)  # no validation: best.ckpt is the best training epoch
        if self.subcommand in EVALUATING_SUBCOMMANDS:  # a checkpoint of another DataModule, and --data forgotten
            config = self.config[self.subcommand]
            given = getattr(self, "_data_given", True)
            check_data_of_checkpoint(config.get("data"), self._resolved_ckpt(config.get("ckpt_path")), given)
        if self.subcommand == "predict":
            config = self.config[self.subcommand]
            data_from_checkpoint(config, self._resolved_ckpt(config.get("ckpt_path")))

    def after_instantiate_classes(self) -> None:
        """Refuse a checkpoint of another input contract than the data; normalize a pretrained backbone's way.

        With ``--ckpt_path`` (test, validate, predict), the checkpoint's channels, image size and class names must be
        the DataModule's. With a pretrained TransferClassifier, the data is normalized with the backbone's mean and
        std unless others are given.
        """
        super().after_instantiate_classes()
        model, dm = getattr(self, "model", None), getattr(self, "datamodule", None)
        ckpt = self._resolved_ckpt(self.config[self.subcommand].get("ckpt_path")) if self.subcommand else None
        if ckpt is not None and self.subcommand != "fit" and isinstance(dm, ClassifierDataModule):
            # Before the weights are read: a model of another contract would fail there with a bare size mismatch.
            contract = InputContract.from_checkpoint(ckpt)
            check_contract(contract, dm.input_contract(), f"--ckpt_path {ckpt}", type(dm).__name__)
        if not isinstance(model, TransferClassifier) or not isinstance(dm, ClassifierDataModule):
            return
        pretrained = model.hparams.get("pretrained") or model.hparams.get("weights")
        if pretrained and dm.normalize == "dataset" and dm.mean is None:
            cfg = model.data_config
            dm.use_statistics(list(cfg["mean"]), list(cfg["std"]))

    def before_fit(self) -> None:
        self._fit_started = time.perf_counter()

    def after_fit(self) -> None:
        trainer = self.trainer
        seconds = time.perf_counter() - getattr(self, "_fit_started", time.perf_counter())
        snapshot = next((c for c in trainer.callbacks if isinstance(c, SnapshotBest)), None)  # type: ignore[attr-defined]
        ckpt = snapshot if snapshot is not None else trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        nothing = nothing_to_test(self.datamodule) if self.config["fit"].get("test_after_fit") else None
        if nothing is not None:
            rank_zero_info(f"{nothing} --test_after_fit skips the test.")
        elif self.config["fit"].get("test_after_fit"):
            assert isinstance(self.model, LightningModule) and isinstance(self.datamodule, LightningDataModule)
            self.test_results = trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        log_dir = trainer.log_dir or trainer.default_root_dir  # a collective under DDP: every rank asks
        if trainer.is_global_zero:
            print(f"Training took {seconds:.1f} s ({trainer.current_epoch} epochs).")
            print(f"Best checkpoint: {best or '(none saved)'}")
            print(f"Logs and config: {Path(log_dir).resolve()}")
