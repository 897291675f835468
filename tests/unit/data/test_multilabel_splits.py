"""Iterative stratification of a 0/1 label matrix: label frequencies kept, disjoint, covering, seeded, warned."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lightning_cnn.data.multilabel_splits import iterative_stratification, multilabel_folds, multilabel_split
from lightning_cnn.data.splits import kfold_split, stratified_split


def _labels(n: int = 600, seed: int = 0) -> np.ndarray:
    """Correlated labels of very different frequencies (about 50%, 20%, 5% and 2% of the samples)."""
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.5
    b = (rng.random(n) < 0.3) & a | (rng.random(n) < 0.05)
    c = rng.random(n) < 0.05
    d = (rng.random(n) < 0.04) & ~a
    return np.stack([a, b, c, d], 1).astype(np.int64)


def _random_split_error(y: np.ndarray, fractions: list[float], seed: int) -> float:
    order = np.random.default_rng(seed).permutation(len(y))
    cuts = np.cumsum([round(f * len(y)) for f in fractions])[:-1]
    parts = np.split(order, cuts)
    return max(abs(y[p].mean(0) - y.mean(0)).max() for p in parts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_split_keeps_every_label_frequency_within_two_points(seed):
    y = _labels(seed=seed)
    split = multilabel_split(y, val_fraction=0.15, test_fraction=0.15, seed=seed)
    overall = y.mean(0)
    for name, idx in split.items():
        # Tolerance: 2 percentage points per label (a random split of these sizes misses the rare labels by more).
        assert np.abs(y[idx].mean(0) - overall).max() <= 0.02, (name, y[idx].mean(0), overall)
        # Each split holds its share of each label's samples up to one sample.
        share = {"train": 0.7, "val": 0.15, "test": 0.15}[name]
        assert np.all(np.abs(y[idx].sum(0) - share * y.sum(0)) <= 1.0 + 1e-9), (name, y[idx].sum(0), y.sum(0))
    assert sum(len(v) for v in split.values()) == len(y)


def test_it_keeps_frequencies_better_than_a_random_split():
    y = _labels(n=400, seed=3)
    split = multilabel_split(y, 0.2, 0.2, seed=0)
    ours = max(abs(y[idx].mean(0) - y.mean(0)).max() for idx in split.values())
    random = np.mean([_random_split_error(y, [0.6, 0.2, 0.2], s) for s in range(10)])
    assert ours < random / 2, (ours, random)


def test_splits_are_disjoint_cover_every_index_and_repeat_for_a_seed():
    y = _labels()
    a = multilabel_split(y, 0.15, 0.15, seed=7)
    b = multilabel_split(y, 0.15, 0.15, seed=7)
    c = multilabel_split(y, 0.15, 0.15, seed=8)
    every = np.concatenate(list(a.values()))
    assert len(every) == len(np.unique(every)) == len(y)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert all(np.all(np.diff(v) > 0) for v in a.values())  # sorted


def test_stratified_split_takes_a_label_matrix_and_kfold_keeps_the_test_split():
    y = _labels()
    single = stratified_split(y, 0.15, 0.15, seed=0)
    assert all(np.array_equal(single[k], multilabel_split(y, 0.15, 0.15, seed=0)[k]) for k in single)
    folds = [kfold_split(y, 4, k, 0.15, 0.15, seed=0) for k in range(4)]
    assert all(np.array_equal(f["test"], single["test"]) for f in folds)
    vals = np.concatenate([f["val"] for f in folds])
    rest = np.setdiff1d(np.arange(len(y)), single["test"])
    assert np.array_equal(np.sort(vals), rest)  # every non-test sample validates in exactly one fold
    for f in folds:
        assert not set(f["train"]) & set(f["val"]) and not set(f["train"]) & set(f["test"])
        assert np.abs(y[f["val"]].mean(0) - y[rest].mean(0)).max() <= 0.03


def test_a_label_with_fewer_samples_than_splits_is_warned_about_by_name():
    y = np.zeros((30, 2), dtype=np.int64)
    y[::2, 0] = 1
    y[3, 1] = y[9, 1] = 1  # two samples: three splits cannot each get one
    with pytest.warns(UserWarning, match=r"Label 'rare' has 2 sample\(s\): too few to give each of the 3 splits"):
        multilabel_split(y, 0.2, 0.2, seed=0, class_names=["common", "rare"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multilabel_split(y, 0.2, 0.0, seed=0, class_names=["common", "rare"])  # two splits: enough


def test_iterative_stratification_deals_the_rarest_label_first_into_exact_shares():
    y = np.array([[1, 0]] * 6 + [[0, 1]] * 3 + [[1, 1]] * 3)
    parts = iterative_stratification(y, [2 / 3, 1 / 3], seed=0)
    assert [y[p].sum(0).tolist() for p in parts] == [[6, 4], [3, 2]]


def test_unlabelled_samples_fill_the_splits_sample_demand():
    y = np.zeros((20, 1), dtype=np.int64)
    y[:10] = 1
    parts = iterative_stratification(y, [0.5, 0.5], seed=1)
    assert [len(p) for p in parts] == [10, 10] and [int(y[p].sum()) for p in parts] == [5, 5]


def test_folds_are_equal_and_stratified():
    y = _labels(n=480)
    test, folds = multilabel_folds(y, 3, 0.15, 0.15, seed=0)
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 3
    assert len(np.concatenate([test, *folds])) == len(np.unique(np.concatenate([test, *folds]))) == len(y)
    for f in folds:
        assert np.abs(y[f].mean(0) - y.mean(0)).max() <= 0.03


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([[0, 2], [1, 0]]), "but got 2 at row 0, column 1"),
        (np.array([[0.5, 1.0]]), "but got 0.5 at row 0, column 0"),
        (np.zeros((3, 0)), "with N, L >= 1, but got shape (3, 0)"),
    ],
)
def test_a_matrix_that_is_not_0_1_is_refused(labels, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        iterative_stratification(labels, [0.5, 0.5])


@pytest.mark.filterwarnings("ignore:Label '0' has 2 sample")
def test_too_few_samples_for_a_split_is_refused():
    with pytest.raises(ValueError, match="too few to give the test split"):
        multilabel_split(np.array([[1], [0], [1]]), 0.3, 0.1, seed=0)
