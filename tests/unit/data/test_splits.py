import numpy as np
import pytest

from lightning_cnn import stratified_split


def test_split_is_disjoint_covering_and_repeatable():
    labels = np.repeat(np.arange(4), [30, 20, 25, 40])
    a = stratified_split(labels, 0.2, 0.1, seed=3)
    b = stratified_split(labels, 0.2, 0.1, seed=3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    joined = np.concatenate([a["train"], a["val"], a["test"]])
    assert np.array_equal(np.sort(joined), np.arange(labels.size))
    c = stratified_split(labels, 0.2, 0.1, seed=4)
    assert not np.array_equal(a["val"], c["val"])


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [
        (-0.2, 0.1, r"Expected val_fraction to be in \[0, 1\), but got -0.2."),
        (0.5, 0.5, "Expected val_fraction \\+ test_fraction to be < 1"),
        (0.2, 1.2, r"Expected test_fraction to be in \[0, 1\), but got 1.2."),
    ],
)
def test_bad_fractions(val, test, message):
    with pytest.raises(ValueError, match=message):
        stratified_split(np.repeat([0, 1], 10), val, test)


def test_one_class_and_tiny_class_are_refused():
    with pytest.raises(ValueError, match=r"at least 2 classes"):
        stratified_split(np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="Class 'cat' has 2 samples: too few"):
        stratified_split(np.array([0] * 20 + [1] * 2), class_names=["dog", "cat"])
