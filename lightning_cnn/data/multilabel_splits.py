"""Train / validation / test splits and k-fold splits of multi-label data by iterative stratification.

Iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the stratification of multi-label data",
ECML PKDD 2011) deals the samples out label by label: it takes the label with the fewest samples still to deal
(rare labels first, while every split still has room for them), and gives each of its samples to the split
that most wants that label (the largest remaining demand for it, then the largest remaining demand for
samples, then a seeded draw). Each split so gets close to its share of every label's samples, which a random
split of a rare label would not.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["check_label_matrix", "iterative_stratification", "multilabel_folds", "multilabel_split"]


def check_label_matrix(labels: np.ndarray | Sequence[Sequence[int]], name: str = "labels") -> np.ndarray:
    """A 0/1 label matrix ``[N, L]`` as int64, checked: two dimensions, at least one sample and one label, 0/1 only.

    Raises:
        ValueError: naming ``name``, the shape, or the first value that is neither 0 nor 1 and where it is.

    Example:
        >>> check_label_matrix([[1, 0], [0, 1]]).dtype
        dtype('int64')
        >>> check_label_matrix([[1, 0], [2, 1]], "y")
        Traceback (most recent call last):
        ...
        ValueError: Expected y to be a 0/1 label matrix [N, L] (1: the image has the label), but got 2 at row 1, \
column 0.
    """
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise ValueError(f"Expected {name} to be a 0/1 label matrix [N, L] with N, L >= 1, but got shape {y.shape}.")
    if y.dtype == np.bool_:
        return y.astype(np.int64)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"Expected {name} to be a 0/1 label matrix [N, L] of numbers, but got dtype {y.dtype}.")
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = y[row, col]
        shown = int(value) if np.issubdtype(y.dtype, np.integer) else float(value)
        raise ValueError(
            f"Expected {name} to be a 0/1 label matrix [N, L] (1: the image has the label), but got {shown:g} at"
            f" row {row}, column {col}."
        )
    return y.astype(np.int64)


def _names(num_labels: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is not None and len(class_names) == num_labels:
        return [str(n) for n in class_names]
    return [str(i) for i in range(num_labels)]


def iterative_stratification(
    labels: np.ndarray | Sequence[Sequence[int]],
    fractions: Sequence[float],
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    split_names: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Deal the samples of a 0/1 label matrix into ``len(fractions)`` subsets that keep each label's frequency.

    Each subset ``j`` wants ``fractions[j]`` of the samples and of each label's samples. While samples are left,
    the label with the fewest samples left (ties: a seeded draw) is dealt: each of its samples goes to the subset
    with the largest remaining demand for that label, then for samples, then a seeded draw; the sample's labels
    lower that subset's demands. Samples without any label go last, to the subsets with the largest demand for
    samples. The result depends only on the labels, the fractions and ``seed``.

    A label with fewer samples than subsets cannot be in every subset: that is warned about, naming the label.

    Args:
        labels: the label matrix ``[N, L]``.
        fractions: each subset's share of the samples, positive, summing to 1.
        seed: seed of the order and the draws.
        class_names: label names for the warning (``None``: the column numbers).
        split_names: subset names for the warning (``None``: their numbers).

    Returns:
        one sorted int64 index array per subset.

    Raises:
        ValueError: for a matrix that is not 0/1 ``[N, L]``, or fractions that are not positive or do not sum to 1.

    Example:
        >>> y = np.array([[1, 0]] * 6 + [[0, 1]] * 3 + [[1, 1]] * 3)
        >>> parts = iterative_stratification(y, [2 / 3, 1 / 3], seed=0)
        >>> [len(p) for p in parts], [y[p].sum(0).tolist() for p in parts]
        ([7, 5], [[6, 4], [3, 2]])
    """
    y = check_label_matrix(labels)
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.ndim != 1 or shares.size == 0 or (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"Expected fractions to be positive numbers summing to 1, but got {list(fractions)!r}.")
    n, num_labels = y.shape
    k = shares.size
    names = _names(num_labels, class_names)
    where = [str(s) for s in split_names] if split_names is not None else [str(j) for j in range(k)]
    counts = y.sum(0)
    for column in np.flatnonzero(counts < k):
        warnings.warn(
            f"Label {names[column]!r} has {int(counts[column])} sample(s): too few to give each of the {k} splits"
            f" ({', '.join(where)}) one, so its frequency cannot be kept in every split. Add samples of it, or"
            " use fewer splits.",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # the seeded order in which a label's samples are dealt
    want_samples = shares * n
    want_labels = shares[:, None] * counts[None, :].astype(np.float64)  # [k, L]
    owner = np.full(n, -1, dtype=np.int64)
    left = y[order].astype(bool)  # rows in the seeded order
    remaining = np.ones(n, dtype=bool)

    def pick(candidates: np.ndarray, demand: np.ndarray) -> np.ndarray:
        best = demand[candidates]
        return candidates[best == best.max()]

    while True:
        per_label = left[remaining].sum(0)
        open_labels = np.flatnonzero(per_label > 0)
        if open_labels.size == 0:
            break
        fewest = open_labels[per_label[open_labels] == per_label[open_labels].min()]
        label = int(fewest[rng.integers(fewest.size)]) if fewest.size > 1 else int(fewest[0])
        for row in np.flatnonzero(remaining & left[:, label]):
            choice = pick(np.arange(k), want_labels[:, label])
            if choice.size > 1:
                choice = pick(choice, want_samples)
            j = int(choice[rng.integers(choice.size)]) if choice.size > 1 else int(choice[0])
            owner[order[row]] = j
            remaining[row] = False
            want_labels[j] -= left[row]
            want_samples[j] -= 1
    for row in np.flatnonzero(remaining):  # samples without any label
        choice = pick(np.arange(k), want_samples)
        j = int(choice[rng.integers(choice.size)]) if choice.size > 1 else int(choice[0])
        owner[order[row]] = j
        want_samples[j] -= 1
    return [np.flatnonzero(owner == j).astype(np.int64) for j in range(k)]


def _check_not_empty(parts: dict[str, np.ndarray], n: int) -> None:
    empty = [name for name, idx in parts.items() if idx.size == 0]
    if empty:
        raise ValueError(
            f"The {n} samples are too few to give the {', '.join(empty)} split(s) at least one: add samples, or"
            " raise the fractions."
        )


def multilabel_split(
    labels: np.ndarray | Sequence[Sequence[int]],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Split a multi-label pool into train, val and test by :func:`iterative_stratification`, reproducibly.

    The fractions are checked as by :func:`~lightning_cnn.data.splits.stratified_split` (the caller's job);
    ``test_fraction=0`` gives an empty test split.

    Raises:
        ValueError: for a matrix that is not 0/1 ``[N, L]``, or a split that would be empty.

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 10)
        >>> s = multilabel_split(y, 0.2, 0.2, seed=0)
        >>> [len(s[k]) for k in ("train", "val", "test")], y[s["test"]].sum(0).tolist()
        ([24, 8, 8], [4, 4])
    """
    y = check_label_matrix(labels)
    names = ("train", "val", "test") if test_fraction > 0 else ("train", "val")
    shares = [1 - val_fraction - test_fraction, val_fraction, test_fraction][: len(names)]
    parts = dict(zip(names, iterative_stratification(y, shares, seed, class_names, names), strict=True))
    parts.setdefault("test", np.zeros(0, dtype=np.int64))
    _check_not_empty(parts if test_fraction > 0 else {k: parts[k] for k in names}, len(y))
    return parts


def multilabel_folds(
    labels: np.ndarray | Sequence[Sequence[int]],
    num_folds: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The test split of :func:`multilabel_split` (the same indices), and the rest in ``num_folds`` folds.

    The folds are an :func:`iterative_stratification` of the train and val samples into equal shares (seeded
    with ``seed + 1``, so they are not the single split's cut again).

    Returns:
        ``(test, folds)``: sorted int64 index arrays.

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 9)
        >>> test, folds = multilabel_folds(y, 3, test_fraction=0.25)
        >>> len(test), [len(f) for f in folds], [y[f].sum(0).tolist() for f in folds]
        (9, [9, 9, 9], [[5, 5], [4, 4], [5, 5]])
    """
    y = check_label_matrix(labels)
    split = multilabel_split(y, val_fraction, test_fraction, seed, class_names)
    rest = np.sort(np.concatenate([split["train"], split["val"]]))
    fold_names = [f"fold {k}" for k in range(num_folds)]
    parts = iterative_stratification(y[rest], [1 / num_folds] * num_folds, seed + 1, class_names, fold_names)
    folds = [np.sort(rest[p]) for p in parts]
    _check_not_empty(dict(zip(fold_names, folds, strict=True)), len(y))
    return split["test"], folds
