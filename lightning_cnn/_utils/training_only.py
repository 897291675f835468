"""A fit without validation (``val_fraction=0``): a ``val/...`` monitor falls back to the training metric.

With no validation split nothing logs ``val/loss``: a checkpoint, snapshot or early stop that watches it would
never decide (or stop the run with "not logged"). The functions here find that case, from a running trainer
(:func:`runs_without_validation`) or from the command line's parsed options (:func:`fall_back_without_validation`),
and name the training metric to watch instead (``val/loss`` -> ``train/loss``, ``val/acc`` -> ``train/acc``: the
same quantity on the training batches, so ``mode`` keeps its meaning). :func:`nothing_to_test` says why a test
after fit has no images to test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_cnn._utils.protocols import HasSplit

__all__ = [
    "fall_back_without_validation",
    "fallback_message",
    "nothing_to_test",
    "runs_without_validation",
    "training_metric",
]

_VAL, _TRAIN = "val/", "train/"


def training_metric(monitor: str | None) -> str | None:
    """The training metric that stands in for a validation one, or ``None`` when ``monitor`` is no ``val/...``.

    Example:
        >>> training_metric("val/loss"), training_metric("val/acc"), training_metric("train/loss")
        ('train/loss', 'train/acc', None)
    """
    if not isinstance(monitor, str) or not monitor.startswith(_VAL):
        return None
    return _TRAIN + monitor.removeprefix(_VAL)


def fallback_message(owner: str, monitor: str, replacement: str, reason: str) -> str:
    """The one message that says which monitor changed, why, and to what.

    Example:
        >>> fallback_message("SnapshotBest", "val/loss", "train/loss", "val_fraction=0: no validation split")
        'SnapshotBest: val_fraction=0: no validation split, so it monitors train/loss instead of val/loss.'
    """
    return f"{owner}: {reason}, so it monitors {replacement} instead of {monitor}."


def runs_without_validation(trainer: Any) -> str | None:
    """Why this trainer's fit validates nothing, or ``None`` when it validates.

    No validation runs with ``limit_val_batches=0``, or with a DataModule whose split holds no validation images
    (``val_fraction=0``; call it after the DataModule's ``setup``, e.g. in a callback's ``setup``).
    """
    if getattr(trainer, "limit_val_batches", 1) == 0:
        return "limit_val_batches=0: no validation"
    datamodule = getattr(trainer, "datamodule", None)
    if isinstance(datamodule, HasSplit) and len(datamodule.split.get("val", ())) == 0:
        return f"{type(datamodule).__name__} has no validation split (val_fraction=0)"
    return None


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) or hasattr(config, "get") else None


def fall_back_without_validation(config: Any) -> list[str]:
    """Point the command line's ``val/...`` monitors at the training metric when the fit validates nothing.

    ``config`` is the parsed options of ``fit``. Without validation (``--data.val_fraction 0`` without
    ``--data.num_folds``, or ``--trainer.limit_val_batches 0``), ``--checkpoint.monitor`` and the ``monitor`` of
    each callback in ``--trainer.callbacks`` that watches ``val/...`` are changed in place to the training metric
    (:func:`training_metric`), so ``best.ckpt`` is the best training epoch, and the run's ``config.yaml`` says so.

    Returns:
        One message per changed monitor (none when the fit validates).
    """
    data_args = _get(_get(config, "data"), "init_args")
    trainer = _get(config, "trainer") or {}
    reason = None
    if _get(trainer, "limit_val_batches") in (0, 0.0):
        reason = "--trainer.limit_val_batches 0: no validation"
    elif data_args is not None and _get(data_args, "val_fraction") == 0 and _get(data_args, "num_folds") is None:
        reason = "--data.val_fraction 0: no validation split"
    if reason is None:
        return []
    messages = []
    checkpoint = _get(config, "checkpoint")
    replacement = training_metric(_get(checkpoint, "monitor"))
    if checkpoint is not None and replacement is not None:
        messages.append(fallback_message("--checkpoint.monitor", checkpoint["monitor"], replacement, reason))
        checkpoint["monitor"] = replacement
    callbacks = _get(trainer, "callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        args = _get(callback, "init_args")
        replacement = training_metric(_get(args, "monitor"))
        if args is not None and replacement is not None:
            name = str(_get(callback, "class_path")).rsplit(".", 1)[-1]
            messages.append(fallback_message(name, args["monitor"], replacement, reason))
            args["monitor"] = replacement
    return messages


def nothing_to_test(datamodule: Any) -> str | None:
    """Why a test of this DataModule would find no images (no test split, no test set of its own), else ``None``.

    Example:
        >>> from lightning_cnn.data import DigitsDataModule
        >>> print(nothing_to_test(DigitsDataModule(val_fraction=0.1, test_fraction=0)))
        Nothing to test: DigitsDataModule holds out no test images (test_fraction=0) and has no test set of its own.
    """
    if getattr(datamodule, "has_test_source", True) or not isinstance(datamodule, HasSplit):
        return None
    if len(datamodule.split.get("test", ())) > 0:
        return None
    fraction = getattr(datamodule, "test_fraction", 0)
    return (
        f"Nothing to test: {type(datamodule).__name__} holds out no test images (test_fraction={fraction!r}) and"
        " has no test set of its own."
    )
