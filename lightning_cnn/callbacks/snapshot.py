"""Keep the weights of the best validation epoch, write them as ``best.ckpt`` and load them when ``fit`` ends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightning_cnn._utils.validation import check_choice
from lightning_cnn.callbacks.best_weights import (
    MODE_NAMES,
    STORAGE_NAMES,
    Mode,
    Storage,
    checks_on_train_epoch_end,
    default_dir,
    fall_back_to_training,
    is_fitting,
    load_weights,
    log_best,
    monitored_value,
    save_checkpoint_atomically,
    validated_weights,
)

__all__ = ["BestCheckpoint", "SnapshotBest"]


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` keeping one file (top 1, no version suffix), written atomically, on demand.

    The file side of :class:`SnapshotBest`: it keeps the bookkeeping of ``ModelCheckpoint``
    (``best_model_path``, ``best_model_score``, ``best_k_models``, the file name from ``dirpath`` and
    ``filename``, the removal of a replaced file) but decides nothing: :meth:`save_best` writes the checkpoint
    of a value its owner found better. Not meant to be listed in ``trainer.callbacks`` itself.

    Lightning internals used (the protected extension points of ``ModelCheckpoint``): ``_monitor_candidates``,
    ``_update_best_and_save``, and ``_save_checkpoint``, overridden to write through a temporary file.

    Args:
        monitor: the logged metric the file is the best of.
        mode: ``"min"`` or ``"max"``.
        dirpath: folder of the file (``None`` until the owner sets it in ``setup``).
        filename: file name without ``.ckpt`` (``ModelCheckpoint``'s templates such as ``{epoch}`` apply).

    Example:
        >>> core = BestCheckpoint(monitor="val/acc", mode="max", dirpath="runs/snapshots", filename="best")
        >>> core.save_top_k, core.best_model_path
        (1, '')
    """

    def __init__(self, monitor: str, mode: Mode, dirpath: str | None, filename: str) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        )

    def candidates(self, trainer: pl.Trainer, current: torch.Tensor) -> dict[str, torch.Tensor]:
        """The metrics the file name is formatted with, the monitored one replaced by ``current``."""
        metrics = self._monitor_candidates(trainer)
        metrics[str(self.monitor)] = current
        return metrics

    def path_for(self, trainer: pl.Trainer, current: torch.Tensor) -> str:
        """The absolute path :meth:`save_best` will write for ``current``."""
        return str(Path(self.format_checkpoint_name(self.candidates(trainer, current))).resolve())

    def save_best(self, trainer: pl.Trainer, current: torch.Tensor) -> None:
        """Record ``current`` as the best value and write its checkpoint (call it on every rank)."""
        self._update_best_and_save(current, trainer, self.candidates(trainer, current))

    def remember(self, path: str, score: torch.Tensor | None) -> None:
        """Take ``path`` (``""``: none) with ``score`` as the best file, e.g. after a resume."""
        self.best_model_path, self.best_model_score = path, score if path else None
        self.best_k_models = {path: score} if path and score is not None else {}
        self.kth_best_model_path = path if self.best_k_models else ""
        if self.best_k_models:
            self.kth_value = self.best_k_models[path]

    @override
    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        save_checkpoint_atomically(trainer, Path(filepath))


class SnapshotBest(Callback):
    """Keep the weights of the best validation epoch and load them into the module when ``fit`` ends.

    After every validation the monitored value (as rank 0 logged it, so all ranks agree) is compared with the
    best so far; only when it improves are the weights copied (to the CPU, or with ``storage="disk"`` only to
    the file) and ``best.ckpt`` is written atomically under ``dirpath`` (default: ``<log_dir>/snapshots``).
    The file is a full Lightning checkpoint: ``trainer.test(ckpt_path=...)``, ``lightning-cnn test
    --ckpt_path`` and ``torch.load(weights_only=True)`` read it. When ``fit`` ends (in ``teardown``, after
    every callback's ``on_train_end``) the best weights are loaded into the module, so ``trainer.test(model)``
    right after ``fit`` tests the best snapshot.

    The file is kept by :attr:`checkpoint`, a :class:`BestCheckpoint` (Lightning's
    :class:`~lightning.pytorch.callbacks.ModelCheckpoint` with one file, written atomically), driven by this
    callback rather than listed in ``trainer.callbacks``: so ``SnapshotBest`` also works in a Trainer built with
    ``enable_checkpointing=False`` (which refuses every ``ModelCheckpoint``), and a Trainer's own
    ``ModelCheckpoint`` (``last.ckpt``, top-k) keeps its place as ``trainer.checkpoint_callback``.

    Used with :class:`~lightning.pytorch.callbacks.WeightAveraging` (SWA, EMA): validation scores the averaged
    weights, so the snapshot holds the averaged weights of the best epoch, and they replace the final average
    that ``WeightAveraging`` copied in ``on_train_end``, whatever the order of the callbacks. Used with
    :class:`~lightning_cnn.EarlyStopping` ``(restore_best_weights=True)``: both restore in ``teardown`` in the
    order of ``trainer.callbacks``, the last one wins; with the same ``monitor`` and ``mode`` (and
    ``min_delta=0``) they hold the same weights.

    Args:
        monitor: logged metric to watch, e.g. ``"val/loss"``.
        mode: ``"min"`` or ``"max"``: whether a lower or a higher value is better.
        dirpath: folder of ``best.ckpt``; ``None``: ``snapshots/`` under the trainer's log folder. A folder that
            already holds another run's ``best.ckpt`` (two fits with ``logger=False`` in one ``default_root_dir``)
            keeps it: this run writes ``best-v1.ckpt`` (the next free number) and warns; a resumed run writes on
            the file its checkpoint names.
        filename: file name without ``.ckpt``.
        storage: ``"cpu"`` keeps a copy of the weights in host memory; ``"disk"`` keeps them only in the file
            (for large models; with several nodes ``dirpath`` must be on a shared file system).
        check_on_train_epoch_end: decide at train-epoch end (``True``) or after each validation
            (``False``); ``None``: at train-epoch end when validation runs once per epoch. At train-epoch end a
            value the module logs in its own ``on_train_epoch_end`` is not there yet (Lightning runs that hook
            of callbacks before the module's): log it in a step or in validation.
        verbose: print a line when the best weights are restored.

    Attributes:
        checkpoint: the :class:`BestCheckpoint` that writes and keeps the file.
        best_score: best monitored value (``inf`` or ``-inf`` before the first validation).
        best_epoch: epoch (0-based) of the best value, ``-1`` before the first.
        best_model_path: path of ``best.ckpt`` once written, else ``""``.

    Raises:
        ValueError: for a bad ``mode`` or ``storage``.
        RuntimeError: during ``fit``, when ``monitor`` was not logged (the message lists what was).

    Example:
        >>> snap = SnapshotBest(monitor="val/acc", mode="max")
        >>> snap.best_epoch, snap.best_score
        (-1, tensor(-inf))
        >>> snap.state_key
        "SnapshotBest{'monitor': 'val/acc', 'mode': 'max'}"
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: Mode = "min",
        dirpath: str | None = None,
        filename: str = "best",
        storage: Storage = "cpu",
        check_on_train_epoch_end: bool | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, MODE_NAMES)
        check_choice("storage", storage, STORAGE_NAMES)
        self.monitor, self.mode, self.dirpath, self.filename = monitor, mode, dirpath, filename
        self.storage, self.verbose = storage, verbose
        self.checkpoint = BestCheckpoint(monitor, mode, dirpath, filename)
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.best_score = self._worst()
        self.best_epoch = -1
        self.best_model_path = ""
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._verify_best_file = False  # after a resume: is best.ckpt still there? (decided in on_train_start)

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def _worst(self) -> torch.Tensor:
        return torch.tensor(torch.inf if self.mode == "min" else -torch.inf)

    def _improves(self, current: torch.Tensor) -> bool:
        if not torch.isfinite(current):
            return False
        return bool(current < self.best_score if self.mode == "min" else current > self.best_score)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._check_on_train_epoch_end = checks_on_train_epoch_end(trainer, self._check_on_train_epoch_end)
            replacement = fall_back_to_training(trainer, self.monitor, type(self).__name__)
            if replacement is not None:  # no validation: decide on the training metric at each epoch's end
                self.monitor = self.checkpoint.monitor = replacement
                self._check_on_train_epoch_end = True
            # absolute: a run resumed from another folder finds the file
            self.checkpoint.dirpath = str(default_dir(trainer, self.dirpath).resolve())

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._check_on_train_epoch_end and is_fitting(trainer):
            self._check(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._check_on_train_epoch_end and is_fitting(trainer):
            self._check(trainer, pl_module)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        current = monitored_value(trainer, self.monitor, type(self).__name__)
        if not self._improves(current):
            return
        # The state first: the checkpoint written next holds this callback's state too.
        self.best_score, self.best_epoch = current, trainer.current_epoch
        self.best_model_path = self.checkpoint.path_for(trainer, current)
        self._best_weights = validated_weights(trainer, pl_module) if self.storage == "cpu" else None
        self.checkpoint.save_best(trainer, current)
        log_best(trainer, "snapshot_best", self.best_epoch, self.best_score)

    @property
    def best_weights(self) -> dict[str, torch.Tensor] | None:
        """The best weights as a CPU ``state_dict`` (read from ``best.ckpt`` with ``storage="disk"``), or ``None``."""
        if self._best_weights is not None:
            return self._best_weights
        if self.best_model_path and Path(self.best_model_path).is_file():
            return load_weights(self.best_model_path)
        return None

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        weights = self.best_weights
        if weights is None:
            return
        pl_module.load_state_dict(weights)
        if self.verbose:
            rank_zero_info(
                f"SnapshotBest: restored the weights of epoch {self.best_epoch} ({self.monitor}={self.best_score:.4g})."
            )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_model_path": self.best_model_path}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_model_path = state_dict["best_model_path"]
        self.checkpoint.remember(self.best_model_path, self.best_score)
        # The weights live in best.ckpt; read them from there (once) if this run keeps them in memory. Whether the
        # file is gone is decided in on_train_start, on rank 0 for every rank (the ranks must decide alike).
        self._best_weights = None
        self._verify_best_file = bool(self.best_model_path)
        if self.storage == "cpu" and self.best_model_path and Path(self.best_model_path).is_file():
            self._best_weights = load_weights(self.best_model_path)

    def _earlier_files(self, stem: str) -> list[str]:
        """The files ``stem`` names (its ``{...}`` fields match anything) that this run did not resume from."""
        folder = Path(str(self.checkpoint.dirpath))
        own = str(Path(self.best_model_path).resolve()) if self.best_model_path else ""
        pattern = re.sub(r"\{[^}]*\}", "*", stem)
        return sorted(str(p) for p in folder.glob(f"{pattern}.ckpt") if str(p.resolve()) != own)

    def _keep_earlier_files(self, trainer: pl.Trainer) -> None:
        """Write under a new name (``best-v1``) when the folder holds another run's ``best.ckpt`` (warning which)."""
        self.checkpoint.filename = self.filename
        suffix = 0
        if trainer.is_global_zero and self._earlier_files(self.filename):
            suffix = 1
            while self._earlier_files(f"{self.filename}-v{suffix}"):
                suffix += 1
        suffix = trainer.strategy.broadcast(suffix, src=0)
        if not suffix:
            return
        earlier = self._earlier_files(self.filename)
        self.checkpoint.filename = f"{self.filename}-v{suffix}"
        rank_zero_warn(
            f"SnapshotBest: {self.checkpoint.dirpath} already holds another run's best checkpoint"
            f" ({', '.join(earlier) or self.filename}), which this run leaves as it is: it writes its own as"
            f" {self.checkpoint.filename}.ckpt (best_model_path says where). Give dirpath= a folder of its own"
            " to keep the name."
        )

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._keep_earlier_files(trainer)
        if not self._verify_best_file:
            return
        self._verify_best_file = False
        exists = trainer.strategy.broadcast(Path(self.best_model_path).is_file(), src=0)
        if exists:
            return
        rank_zero_warn(
            f"SnapshotBest: the best checkpoint of the resumed run, {self.best_model_path} (epoch"
            f" {self.best_epoch}, {self.monitor}={float(self.best_score):.4g}), is missing, so its weights cannot"
            " be restored. The best epoch is chosen again from the epochs run from here on."
        )
        self.best_score, self.best_epoch, self.best_model_path, self._best_weights = self._worst(), -1, "", None
        self.checkpoint.remember("", None)
