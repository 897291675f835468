"""A CSV logger that keeps a run's history when the run is resumed, and never writes over another run's logs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from typing_extensions import override

from lightning_cnn._utils.io import atomic_open, is_local, local_path

__all__ = ["CSVRunLogger", "RunFolderInUseError"]

#: Files a run folder may hold before its logger opens it: the command line writes the run's config first.
_WRITTEN_BEFORE_THE_LOGGER = frozenset({"config.yaml"})


class RunFolderInUseError(FileExistsError):
    """A new run was given the folder of an earlier run, whose files it would overwrite."""


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer that, for a resumed run, keeps the rows already in ``metrics.csv``.

    Lightning's writer deletes an existing ``metrics.csv``. This one reads it when ``resume`` is true and, at the
    first save, writes the earlier rows, then the new ones (the columns are the union of both). Earlier rows from
    the first new row's step on were logged after the checkpoint the run resumed from: the resumed run logs those
    steps again, so they are dropped. Without ``resume`` a folder holding an earlier run's files is refused.
    """

    def __init__(self, log_dir: str, resume: bool) -> None:
        self._resume = resume
        self._history: list[dict[str, Any]] | None = None
        self._history_keys: list[str] = []
        super().__init__(log_dir=log_dir)

    @override
    def _check_log_dir_exists(self) -> None:
        folder = local_path(self.log_dir)
        found = sorted(p.name for p in folder.iterdir()) if is_local(folder) and folder.is_dir() else []
        earlier = [name for name in found if name not in _WRITTEN_BEFORE_THE_LOGGER]
        if not earlier:
            return
        if not self._resume:
            raise RunFolderInUseError(
                f"The log folder {self.log_dir} holds the files of an earlier run ({', '.join(earlier)}): a new run"
                " would overwrite them. Give the logger another version (version=None takes the next free one), or"
                " resume that run with resume=True (and its checkpoint as ckpt_path)."
            )
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                reader = csv.DictReader(file)
                self._history = list(reader)
                self._history_keys = list(reader.fieldnames or [])

    @override
    def save(self) -> None:
        if self._history is None or not self.metrics:
            super().save()
            return
        first = min(_step(row) for row in self.metrics)
        kept = [row for row in self._history if not _step(row) >= first]
        dropped = len(self._history) - len(kept)
        self.metrics_keys = sorted(set(self._history_keys).union(*self.metrics))
        opened = (
            atomic_open(self.metrics_file_path, "w", newline="")
            if is_local(self.metrics_file_path)
            else self._fs.open(self.metrics_file_path, "w", newline="")
        )
        with opened as file:  # the earlier rows are never missing from the file, even if this write is cut short
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(kept)
            writer.writerows(self.metrics)
        rank_zero_info(
            f"{self.metrics_file_path}: kept the {len(kept)} rows logged before the resume"
            + (f" (dropped {dropped} logged after its checkpoint, which this run logs again)" if dropped else "")
            + "; the new rows follow them."
        )
        self._history = None
        self.metrics = []


class CSVRunLogger(CSVLogger):
    """Lightning's :class:`~lightning.pytorch.loggers.CSVLogger` that keeps the history of a resumed run.

    The default logger of ``lightning-cnn``. Lightning's CSV logger deletes the ``metrics.csv`` it finds in its
    folder, so a run resumed into its own folder (``lightning-cnn fit --ckpt_path last``) loses every row logged
    before the resume, and a run given an earlier run's ``version`` silently replaces that run's log. This one:

    - with ``resume=True`` keeps the rows already in ``metrics.csv`` and appends the new ones after them (rows the
      earlier run logged after the checkpoint it resumes from are dropped: the resumed run logs those steps again;
      a column logged only before or only after the resume stays, empty in the other rows);
    - with ``resume=False`` (the default) refuses a folder that holds an earlier run's files, with a
      :class:`RunFolderInUseError` naming it, when the logger first writes (before its first file).

    The command line passes ``resume=True`` when ``fit`` is given ``--ckpt_path``.

    Args:
        save_dir: the folder of every run (``runs`` on the command line).
        name: the experiment's folder under ``save_dir``.
        version: the run's folder ``version_N`` (an int) or its name (a string); ``None``: the next free one.
        prefix: put before every metric name.
        flush_logs_every_n_steps: how often the rows are written.
        resume: whether this run continues the run whose folder it is given.

    Example:
        >>> import tempfile
        >>> logger = CSVRunLogger(tempfile.mkdtemp(), name="digits", resume=True)
        >>> logger.version, logger.resume
        (0, True)
    """

    def __init__(
        self,
        save_dir: str | Path,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
        resume: bool = False,
    ) -> None:
        super().__init__(save_dir, name, version, prefix, flush_logs_every_n_steps)
        self.resume = resume

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> _HistoryWriter:
        if self._experiment is not None:
            assert isinstance(self._experiment, _HistoryWriter)
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _HistoryWriter(log_dir=self.log_dir, resume=self.resume)
        return self._experiment
