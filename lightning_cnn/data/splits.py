"""Seeded, stratified train / validation / test splits, and their persistence as ``splits.json``."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_cnn._utils.io import atomic_open
from lightning_cnn._utils.validation import check_index, check_int, check_positive, check_probability
from lightning_cnn.data.multilabel_splits import multilabel_folds, multilabel_split
from lightning_cnn.data.source import DataSource

__all__ = [
    "SPLIT_FILE",
    "SplitState",
    "check_folds",
    "check_fractions",
    "held_out_digest",
    "kfold_split",
    "labels_digest",
    "read_split",
    "split_digest",
    "split_file_digest",
    "stratified_folds",
    "stratified_split",
    "write_split",
]

#: The split's file name in a run's log folder.
SPLIT_FILE = "splits.json"
_KEYS = ("train", "val", "test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless each fraction is in [0, 1) and their sum < 1 (0: no such split).

    Example:
        >>> check_fractions(0.5, 0.5)
        Traceback (most recent call last):
        ...
        ValueError: Expected val_fraction + test_fraction to be < 1 (some data must train), but got 0.5 + 0.5 = 1.
    """
    check_probability("val_fraction", val_fraction)  # in [0, 1); 0: no validation split, all else trains
    check_probability("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"Expected val_fraction + test_fraction to be < 1 (some data must train), but got"
            f" {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}."
        )


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Split sample indices into train, val and test, class by class, reproducibly.

    Each class's indices are shuffled by a generator seeded with ``seed`` and cut so that the class gets
    ``round(n_c * val_fraction)`` validation and ``round(n_c * test_fraction)`` test samples; the rest
    train. The result depends only on ``labels``, the fractions and the seed: every process (every DDP
    rank) computes the same split without communication.

    Args:
        labels: class index of every sample, or a 0/1 label matrix ``[N, L]`` (multi-label: see
            :func:`~lightning_cnn.data.multilabel_splits.multilabel_split`).
        val_fraction: share of each class for validation, in ``[0, 1)`` (0: no validation split).
        test_fraction: share of each class for the test set, in ``[0, 1)`` (0: no test split).
        seed: seed of the shuffle.
        class_names: names for error messages.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 index arrays.

    Raises:
        ValueError: for fractions out of range or summing to 1 or more, fewer than two classes, or a class
            too small to give every split a sample.

    Example:
        >>> s = stratified_split([0] * 10 + [1] * 10, val_fraction=0.2, test_fraction=0.2, seed=0)
        >>> [len(s[k]) for k in ("train", "val", "test")]
        [12, 4, 4]
    """
    if np.ndim(labels) == 2:  # a 0/1 label matrix [N, L]: multi-label, by iterative stratification
        check_fractions(val_fraction, test_fraction)
        return multilabel_split(np.asarray(labels), val_fraction, test_fraction, seed, class_names)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for name, idx, n_val, n_test in _class_cuts(labels, val_fraction, test_fraction, seed, class_names):
        if (val_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1) or idx.size - n_val - n_test < 1:
            raise ValueError(
                f"Class {name!r} has {idx.size} samples: too few to give train, val (fraction {val_fraction})"
                f" and test (fraction {test_fraction}) at least one each. Add samples, raise the fractions,"
                " or remove the class."
            )
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def _class_cuts(
    labels: Sequence[int] | np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    class_names: Sequence[str] | None,
) -> list[tuple[Any, np.ndarray, int, int]]:
    """Per class: its name, its indices in the seeded order, and its validation and test counts."""
    check_fractions(val_fraction, test_fraction)
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"Expected labels to be a non-empty 1-D sequence, but got shape {y.shape}.")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"Expected at least 2 classes to classify, but the labels hold only {classes.tolist()}.")
    rng = np.random.default_rng(seed)
    cuts = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        name = class_names[c] if class_names is not None and c < len(class_names) else int(c)
        cuts.append((name, idx, round(idx.size * val_fraction), round(idx.size * test_fraction)))
    return cuts


def check_folds(num_folds: int | None, fold: int | None) -> None:
    """Raise unless both are ``None`` (one split) or ``num_folds`` is an int >= 2 and ``fold`` in ``0..num_folds-1``.

    Example:
        >>> check_folds(5, 5)
        Traceback (most recent call last):
        ...
        ValueError: Expected fold to be an int in 0..4 (num_folds=5), but got 5.
    """
    if num_folds is None:
        if fold is not None:
            raise ValueError(f"Expected fold to be None without num_folds, but got {fold!r}: pass num_folds too.")
        return
    check_positive("num_folds", num_folds, integer=True)
    check_int("num_folds", num_folds, 2)
    check_index("fold", fold, num_folds, f"num_folds={num_folds}")


def stratified_folds(
    labels: Sequence[int] | np.ndarray,
    num_folds: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The test split of :func:`stratified_split` (the same indices), and the rest dealt into ``num_folds`` folds.

    The test indices are exactly those :func:`stratified_split` holds out with the same fractions and seed, so
    a k-fold run and a single-split run are tested on the same images (``val_fraction`` only places that cut).
    Each class's other indices, in the seeded order, are dealt to the folds in turn, the turn carried on from
    class to class: every fold gets ``floor`` or ``ceil`` of each class's share, and the fold sizes differ by
    at most one.

    Returns:
        ``(test, folds)``: sorted int64 index arrays.

    Raises:
        ValueError: for a class with fewer non-test samples than folds, or as :func:`stratified_split`.

    Example:
        >>> test, folds = stratified_folds([0] * 12 + [1] * 12, num_folds=3, test_fraction=0.25)
        >>> len(test), [len(f) for f in folds]
        (6, [6, 6, 6])
    """
    check_folds(num_folds, 0)
    if np.ndim(labels) == 2:  # multi-label: iterative stratification
        check_fractions(val_fraction, test_fraction)
        return multilabel_folds(np.asarray(labels), num_folds, val_fraction, test_fraction, seed, class_names)
    test: list[np.ndarray] = []
    dealt: list[list[np.ndarray]] = [[] for _ in range(num_folds)]
    turn = 0
    for name, idx, n_val, n_test in _class_cuts(labels, val_fraction, test_fraction, seed, class_names):
        rest = np.concatenate([idx[:n_val], idx[n_val + n_test :]])
        if rest.size < num_folds or (test_fraction > 0 and n_test < 1):
            raise ValueError(
                f"Class {name!r} has {idx.size} samples: too few to give each of num_folds={num_folds} folds one"
                f" and the test split (fraction {test_fraction}) one. Add samples, lower num_folds, or remove"
                " the class."
            )
        test.append(idx[n_val : n_val + n_test])
        owner = (turn + np.arange(rest.size)) % num_folds
        for k in range(num_folds):
            dealt[k].append(rest[owner == k])
        turn = (turn + rest.size) % num_folds
    return np.sort(np.concatenate(test)), [np.sort(np.concatenate(parts)) for parts in dealt]


def kfold_split(
    labels: Sequence[int] | np.ndarray,
    num_folds: int,
    fold: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Fold ``fold`` of :func:`stratified_folds` as validation, the other folds as training, the fixed test split.

    Example:
        >>> s = kfold_split([0] * 12 + [1] * 12, num_folds=3, fold=1, test_fraction=0.25)
        >>> [len(s[k]) for k in ("train", "val", "test")]
        [12, 6, 6]
    """
    check_folds(num_folds, fold)
    test, folds = stratified_folds(labels, num_folds, val_fraction, test_fraction, seed, class_names)
    train = np.sort(np.concatenate([f for k, f in enumerate(folds) if k != fold]))
    return {"train": train, "val": folds[fold], "test": test}


def split_digest(split: Mapping[str, np.ndarray]) -> str:
    """A short fingerprint of a split's indices (to check that a resumed run uses the same split).

    Example:
        >>> a = stratified_split([0] * 10 + [1] * 10, seed=0)
        >>> split_digest(a) == split_digest(stratified_split([0] * 10 + [1] * 10, seed=0)), len(split_digest(a))
        (True, 16)
    """
    h = hashlib.sha256()
    for key in _KEYS:
        h.update(key.encode())
        h.update(np.asarray(split[key], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def held_out_digest(split: Mapping[str, np.ndarray]) -> str:
    """A short fingerprint of a split's test indices alone (the same for every fold of a k-fold split)."""
    return split_digest({"train": np.empty(0), "val": np.empty(0), "test": split["test"]})


def labels_digest(labels: Sequence[int] | np.ndarray) -> str:
    """A short fingerprint of the labels a split was computed from (a split of other data is not reused)."""
    y = np.ascontiguousarray(labels, dtype=np.int64)
    return hashlib.sha256(y.tobytes()).hexdigest()[:16]


def write_split(path: str | Path, split: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write the split's indices, its digest and what it was computed from (``meta``) as JSON, atomically."""
    data = dict(meta) | {"num_samples": int(sum(len(v) for v in split.values())), "digest": split_digest(split)}
    data |= {k: np.asarray(v).tolist() for k, v in split.items()}
    with atomic_open(path, "w") as file:
        file.write(json.dumps(data))


def read_split(path: str | Path, meta: Mapping[str, Any], owner: str) -> dict[str, np.ndarray]:
    """Read a split written by :func:`write_split`, checking that ``meta`` matches what it was computed from.

    Raises:
        ValueError: naming the first setting of ``meta`` that differs (``owner`` is the DataModule's name).
    """
    data = json.loads(Path(path).read_text())
    for key, value in meta.items():
        if data.get(key) != value:
            raise ValueError(
                f"The split in {path} was made with {key}={data.get(key)!r}, but this {owner} has {key}={value!r}."
            )
    return {k: np.asarray(data[k], dtype=np.int64) for k in _KEYS}


def split_file_digest(path: str | Path) -> str | None:
    """The digest recorded in a split file, or ``None`` when the file is missing or unreadable."""
    if not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text()).get("digest")
    except (OSError, json.JSONDecodeError):
        return None


class SplitState(DataSource):
    """A DataModule's split: computed once from its source's labels, kept in ``splits.json``, checked on resume.

    The split is :func:`stratified_split` of :meth:`labels` with ``split_seed`` and the fractions (no test
    fraction when the source has its own test set), or with ``num_folds`` set, :func:`kfold_split`: the same
    test split, and fold ``fold`` of the rest as validation. When a trainer is attached, ``splits.json`` in its
    log folder is reused if it was made from the same labels and settings, and rank 0 writes it otherwise (with
    every fold's indices under ``"folds"`` in a k-fold run); a checkpoint's split is found again by its digest.
    """

    split_seed: int
    val_fraction: float
    test_fraction: float
    num_folds: int | None
    fold: int | None
    split_file: Path | None
    _split: dict[str, np.ndarray] | None
    test_set: Any
    predict_set: Any

    @property
    def _test_cut(self) -> float:
        """The fraction the split holds out for test: none when the test images come from a source of their own."""
        return 0.0 if self.has_test_source else self.test_fraction

    def _split_meta(self) -> dict[str, Any]:
        return {
            # The labels' fingerprint keeps a split file of other data (same size, same seed) from being reused.
            "labels_digest": labels_digest(self.labels()),
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self._test_cut,
            "test_source": self.has_test_source,
            "num_folds": self.num_folds,
            "fold": self.fold,
        }

    def _compute_split(self) -> dict[str, np.ndarray]:
        test_fraction = self._test_cut
        if self.num_folds is not None:
            return kfold_split(
                self.labels(), self.num_folds, int(self.fold or 0), self.val_fraction, test_fraction,
                self.split_seed, class_names=self.class_names,
            )  # fmt: skip
        return stratified_split(
            self.labels(), self.val_fraction, test_fraction, self.split_seed, class_names=self.class_names
        )

    def split_state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the split: its settings, its digests and its file."""
        return {
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "num_folds": self.num_folds,
            "fold": self.fold,
            "split_digest": split_digest(self.split) if self._split is not None else None,
            "test_digest": held_out_digest(self.split) if self._split is not None else None,
            "split_file": str(self.split_file) if self.split_file is not None else None,
        }

    @property
    def class_weights(self) -> list[float]:
        """Balanced class weights ``n / (k * n_c)`` from the training split's labels."""
        y = self.labels()[self.split["train"]]
        counts = np.bincount(y, minlength=self.num_classes).astype(np.float64)
        counts[counts == 0] = np.inf
        return (len(y) / (self.num_classes * counts)).tolist()

    def predict_ids(self) -> list[str]:
        """An identifier for each image of the predict set, in its order.

        The image's file when the set reads files, else its position in the set when it is not the split's test
        set, else its index in the pool (the indices in ``splits.json``). Call it after ``setup("predict")``.
        """
        dataset = self.predict_set if self.predict_set is not None else self.test_set
        if dataset is None:
            raise RuntimeError("predict_ids() needs the predict set: call setup('predict') first.")
        paths = getattr(dataset, "paths", None)
        if paths is not None:
            return [str(p) for p in paths]
        if dataset is not self.test_set or self.has_test_source:
            return [str(i) for i in range(len(dataset))]
        return [str(int(i)) for i in self.split["test"]]

    @property
    def split(self) -> dict[str, np.ndarray]:
        """The train / val / test indices, computed once from the labels and ``split_seed``."""
        if self._split is None:
            self._split = self._compute_split()
        return self._split

    def save_split(self, path: str | Path) -> None:
        """Write the split indices and what they were computed from as JSON (atomically)."""
        meta = self._split_meta()
        if self.num_folds is not None:
            _, folds = stratified_folds(
                self.labels(), self.num_folds, self.val_fraction, self._test_cut, self.split_seed, self.class_names
            )
            meta["folds"] = [f.tolist() for f in folds]
        write_split(path, self.split, meta)

    def load_split(self, path: str | Path) -> dict[str, np.ndarray]:
        """Read a split written by :meth:`save_split`, checking that it fits this DataModule's settings."""
        return read_split(path, self._split_meta(), type(self).__name__)

    def _split_path(self) -> Path | None:
        trainer = self._trainer_or_none()
        if trainer is None:
            return None
        return Path(trainer.log_dir or trainer.default_root_dir) / SPLIT_FILE

    def _trainer_or_none(self) -> Any:
        return getattr(self, "trainer", None)

    def _prepare_split(self) -> None:
        """Reuse ``splits.json`` of this run's folder when it fits, else compute the split; rank 0 writes it."""
        path = self._split_path()
        if path is None:
            return
        if self._split is None and path.is_file():
            try:
                self._split = self.load_split(path)
            except (ValueError, KeyError, json.JSONDecodeError) as err:
                warnings.warn(f"Not reusing {path}: {err} Computing the split again.", stacklevel=2)
        split = self.split
        self.split_file = path
        trainer = self._trainer_or_none()
        if trainer is not None and trainer.is_global_zero and split_file_digest(path) != split_digest(split):
            self.save_split(path)

    def _checkpoint_split(self, digest: str, split_file: str | None) -> dict[str, np.ndarray]:
        """The split with this digest: read from ``split_file`` when it is still there, else recomputed."""
        if split_file is not None and Path(split_file).is_file():
            candidate = self.load_split(split_file)
            if split_digest(candidate) == digest:
                return candidate
        candidate = self._compute_split()
        if split_digest(candidate) != digest:
            raise ValueError(
                f"The checkpoint's split (digest {digest}) is not the one this {type(self).__name__} computes"
                f" now, and its split file {split_file!r} is missing or different: the data changed since"
                " training. Restore the data, or start a new run."
            )
        return candidate

    def _write_split_file(self) -> None:
        """On rank 0 of an attached trainer: write the split into the run's folder, and remember the file."""
        path = self._split_path()
        trainer = self._trainer_or_none()
        if path is not None and trainer is not None and trainer.is_global_zero:
            self.save_split(path)
            self.split_file = path
