"""K-fold splits: disjoint folds covering every non-test index once, class ratios kept, the test split fixed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_cnn import DigitsDataModule
from lightning_cnn.data.splits import check_folds, kfold_split, stratified_folds, stratified_split


def _labels(class_counts: list[int], order_seed: int) -> np.ndarray:
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    return np.random.default_rng(order_seed).permutation(labels)


@settings(max_examples=120, deadline=None)
@given(
    class_counts=st.lists(st.integers(min_value=12, max_value=80), min_size=2, max_size=5),
    num_folds=st.integers(2, 6),
    test=st.sampled_from([0.0, 0.1, 0.2]),
    seed=st.integers(0, 2**31 - 1),
    order_seed=st.integers(0, 1000),
)
def test_folds_partition_the_non_test_indices_and_keep_class_ratios(class_counts, num_folds, test, seed, order_seed):
    labels = _labels(class_counts, order_seed)
    single = stratified_split(labels, 0.15, test, seed=seed)
    held, folds = stratified_folds(labels, num_folds, 0.15, test, seed=seed)
    # The test split is the single split's, index for index.
    np.testing.assert_array_equal(held, single["test"])
    # The folds are disjoint and, with the test split, cover every index exactly once.
    joined = np.concatenate([held, *folds])
    np.testing.assert_array_equal(np.sort(joined), np.arange(labels.size))
    # Each class's count in each fold is floor or ceil of its share of the non-test samples.
    rest = np.bincount(labels[np.concatenate(folds)], minlength=len(class_counts))
    for fold in folds:
        got = np.bincount(labels[fold], minlength=len(class_counts))
        assert np.all(got >= rest // num_folds) and np.all(got <= -(-rest // num_folds)), (got, rest)
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    # Fold k validates, the others train, and the test split is the same for every k.
    for k in range(num_folds):
        split = kfold_split(labels, num_folds, k, 0.15, test, seed=seed)
        np.testing.assert_array_equal(split["val"], folds[k])
        np.testing.assert_array_equal(split["test"], single["test"])
        np.testing.assert_array_equal(
            np.sort(np.concatenate([split["train"], split["val"]])), np.sort(np.concatenate(folds))
        )
        assert not set(split["train"].tolist()) & set(split["val"].tolist())
    # The same seed gives the same folds; another gives others.
    again = stratified_folds(labels, num_folds, 0.15, test, seed=seed)[1]
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))


def test_a_class_with_fewer_samples_than_folds_is_refused_by_name():
    labels = [0] * 40 + [1] * 4
    with pytest.raises(ValueError, match=r"Class 'b' has 4 samples: too few to give each of num_folds=5 folds one"):
        stratified_folds(labels, 5, 0.15, 0.0, class_names=["a", "b"])


@pytest.mark.parametrize(
    ("num_folds", "fold", "error", "message"),
    [
        (1, 0, ValueError, "Expected num_folds to be an int >= 2, but got 1."),
        (2.5, 0, TypeError, "Expected num_folds to be an int, but got float 2.5."),
        (5, 5, ValueError, r"Expected fold to be an int in 0..4 \(num_folds=5\), but got 5."),
        (5, -1, ValueError, r"Expected fold to be an int in 0..4 \(num_folds=5\), but got -1."),
        (5, None, TypeError, r"Expected fold to be an int in 0..4 \(num_folds=5\), but got None."),
        (None, 2, ValueError, "Expected fold to be None without num_folds, but got 2: pass num_folds too."),
    ],
)
def test_bad_fold_settings_are_refused(num_folds, fold, error, message):
    with pytest.raises(error, match=message):
        check_folds(num_folds, fold)
    with pytest.raises(error, match=message):
        DigitsDataModule(num_folds=num_folds, fold=fold)


def test_every_fold_of_a_datamodule_has_the_test_split_of_no_folds(tmp_path):
    single = DigitsDataModule().split
    folds = [DigitsDataModule(num_folds=3, fold=k).split for k in range(3)]
    for split in folds:
        np.testing.assert_array_equal(split["test"], single["test"])
    vals = np.concatenate([s["val"] for s in folds])
    np.testing.assert_array_equal(np.sort(vals), np.sort(np.concatenate([single["train"], single["val"]])))
    dm = DigitsDataModule(num_folds=3, fold=1)
    dm.save_split(tmp_path / "splits.json")
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert (saved["num_folds"], saved["fold"]) == (3, 1)
    assert [sorted(f) for f in saved["folds"]] == [s["val"].tolist() for s in folds]
    assert saved["val"] == folds[1]["val"].tolist()
    assert dm.state_dict()["num_folds"] == 3 and dm.state_dict()["fold"] == 1
    # A split file of another fold is not taken for this one.
    with pytest.raises(ValueError, match=r"was made with fold=1, but this DigitsDataModule has fold=2"):
        DigitsDataModule(num_folds=3, fold=2).load_split(tmp_path / "splits.json")
