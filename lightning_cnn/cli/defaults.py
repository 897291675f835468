"""The callbacks and the checkpoint plugin every ``lightning-cnn`` run gets, as options of the parser: ``--defaults.*``.

Each is an option whose default is a ``class_path`` / ``init_args`` dict, so ``--print_config`` and the run's
``config.yaml`` list them, ``--defaults.NAME.OPTION VALUE`` configures one, ``--defaults.NAME null`` (``NAME: null``
under ``defaults:`` in YAML) switches it off, and ``--defaults.NAME OtherClass`` swaps it. A callback of the same kind
in ``--trainer.callbacks`` replaces ours; ``--trainer.enable_progress_bar false`` and
``--trainer.enable_model_summary false`` switch off the bar and the summary as in Lightning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ModelSummary, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.plugins.io import CheckpointIO

from lightning_cnn.callbacks import AugmentationPreview, FiniteLossGuard, PredictionWriter, RunSummary, TrainingPlots
from lightning_cnn.checkpoint import AtomicCheckpointIO
from lightning_cnn.cli.output import ModelSummaryTable

__all__ = ["DEFAULTS", "Default", "add_defaults", "default_callbacks", "default_plugins", "class_default"]


def class_default(class_type: type, **kwargs: Any) -> dict[str, Any]:
    """The default ``class_type(**kwargs)`` as jsonargparse's ``class_path`` / ``init_args`` form.

    The parser builds it with the run's other classes and lists it in ``--print_config``. (jsonargparse's
    ``lazy_instance`` would do the same, but reads the whole call stack on each of the 24 calls a start makes: about
    1 s of ``--help``.)
    """
    out: dict[str, Any] = {"class_path": f"{class_type.__module__}.{class_type.__qualname__}"}
    if kwargs:
        out["init_args"] = dict(kwargs)
    return out


@dataclass(frozen=True)
class Default:
    """One default: its option name, the kind it belongs to, its default instance and when it applies."""

    name: str
    kind: type
    make: Callable[[], Any]
    help: str
    subcommands: tuple[str, ...] = ("fit", "validate", "test", "predict")


#: Every default, in the order the trainer gets them.
DEFAULTS: tuple[Default, ...] = (
    Default("run_summary", RunSummary, lambda: class_default(RunSummary), "The run summary table at the start."),
    Default(
        "training_plots",
        TrainingPlots,
        lambda: class_default(TrainingPlots),
        "curves.png, confusion_matrix.png and reliability.png in the run folder.",
    ),
    Default(
        "finite_loss_guard",
        FiniteLossGuard,
        lambda: class_default(FiniteLossGuard),
        "Stop the run on the first NaN or infinite loss.",
    ),
    Default(
        "augmentation_preview",
        AugmentationPreview,
        lambda: class_default(AugmentationPreview),
        "augment_preview.png, when the data augments (scale 1 grows to 64-pixel tiles for smaller images).",
        ("fit",),
    ),
    Default(
        "progress_bar",
        ProgressBar,
        lambda: class_default(RichProgressBar),
        "The progress bar (also off with --trainer.enable_progress_bar false).",
    ),
    Default(
        "model_summary",
        ModelSummary,
        lambda: class_default(ModelSummaryTable),
        "The model summary at the start of fit (also off with --trainer.enable_model_summary false).",
        ("fit",),
    ),
    Default(
        "prediction_writer",
        BasePredictionWriter,
        lambda: class_default(PredictionWriter, strict=False),
        "predictions.csv in the run folder.",
        ("predict",),
    ),
    Default(
        "checkpoint_io",
        CheckpointIO,
        lambda: class_default(AtomicCheckpointIO),
        "The checkpoint plugin: files written through a temporary file, never half-written.",
    ),
)


def add_defaults(parser: LightningArgumentParser, subcommand: str | None) -> None:
    """Add ``--defaults.NAME`` for every default of ``subcommand`` (every default for ``None``: no subcommand)."""
    group = parser.add_argument_group("Defaults", "The callbacks and plugin of every run; null switches one off.")
    for default in DEFAULTS:
        if subcommand is None or subcommand in default.subcommands:
            group.add_argument(
                f"--defaults.{default.name}",
                type=Optional[default.kind],  # noqa: UP045 (jsonargparse reads the annotation at run time)
                default=default.make(),
                help=default.help,
            )


#: The defaults that Lightning would otherwise add itself, and the Trainer flag that keeps it from doing so.
_LIGHTNING_SWITCHES = {"progress_bar": "enable_progress_bar", "model_summary": "enable_model_summary"}


def _given(defaults: Mapping[str, Any] | None, name: str) -> Any:
    return (defaults or {}).get(name)


def default_callbacks(
    defaults: Mapping[str, Any] | None, trainer: dict[str, Any], datamodule: Any, subcommand: str | None
) -> list[Callback]:
    """Our callbacks that this run gets: switched on, and of no kind the user's ``trainer.callbacks`` already has.

    Args:
        defaults: the built ``defaults`` group (name to instance or ``None``).
        trainer: the Trainer's arguments; ``enable_model_summary`` is set to ``False`` when ours prints the summary,
            and ``enable_progress_bar`` / ``enable_model_summary`` to ``False`` when ours is switched off (``null``).
        datamodule: the run's DataModule (the preview needs one that augments).
        subcommand: the running one; ``None`` (a CLI built with ``run=False``) takes every default.
    """
    given = list(trainer.get("callbacks") or [])
    out: list[Callback] = []
    for default in DEFAULTS:
        callback = _given(defaults, default.name)
        if subcommand is not None and subcommand not in default.subcommands:
            continue
        if any(isinstance(c, default.kind) for c in given):
            continue
        if callback is None and default.name in _LIGHTNING_SWITCHES:  # off: Lightning adds none of its own either
            trainer[_LIGHTNING_SWITCHES[default.name]] = False
        if not isinstance(callback, Callback):
            continue
        if default.name == "progress_bar" and trainer.get("enable_progress_bar") is False:
            continue
        if default.name == "model_summary":
            if trainer.get("enable_model_summary") is False or trainer.get("barebones"):
                continue
            trainer["enable_model_summary"] = False  # ours prints it: Lightning adds none of its own
        if default.name == "augmentation_preview":
            if getattr(datamodule, "augmentation", None) is None:
                continue
            side = getattr(datamodule, "image_size", None) or 64
            if isinstance(callback, AugmentationPreview) and callback.scale == 1:
                callback.scale = max(1, 64 // int(side))  # "still a cat?": tiles large enough to see
        out.append(callback)
    return out


def default_plugins(defaults: Mapping[str, Any] | None, plugins: Any) -> list[Any]:
    """The user's plugins, with our checkpoint IO added unless switched off or the user gives one."""
    plugins = list(plugins) if isinstance(plugins, (list, tuple)) else ([plugins] if plugins else [])
    ours = _given(defaults, "checkpoint_io")
    if isinstance(ours, CheckpointIO) and not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(ours)
    return plugins
