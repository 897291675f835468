"""Properties of the seeded, stratified split (Hypothesis), and agreement across processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_cnn import stratified_split

counts = st.lists(st.integers(min_value=1, max_value=60), min_size=2, max_size=6)
fractions = st.tuples(
    st.floats(min_value=0.05, max_value=0.45), st.sampled_from([0.0]) | st.floats(min_value=0.05, max_value=0.45)
)


def _labels(class_counts: list[int], order_seed: int) -> np.ndarray:
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    return np.random.default_rng(order_seed).permutation(labels)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(class_counts=counts, fracs=fractions, seed=st.integers(0, 2**31 - 1), order_seed=st.integers(0, 1000))
def test_split_properties(class_counts, fracs, seed, order_seed):
    val, test = fracs
    labels = _labels(class_counts, order_seed)
    try:
        split = stratified_split(labels, val, test, seed=seed)
    except ValueError as err:
        # Only a class too small for every split may be refused, and the message says which.
        assert "too few to give train, val" in str(err)
        assert any(
            round(n * val) < 1 or (test and round(n * test) < 1) or n - round(n * val) - round(n * test) < 1
            for n in class_counts
        )
        return
    parts = [split["train"], split["val"], split["test"]]
    joined = np.concatenate(parts)
    # Disjoint and covering every index exactly once.
    assert np.array_equal(np.sort(joined), np.arange(labels.size))
    # Each class's count in each part is within one sample of its share.
    for key, frac in (("val", val), ("test", test), ("train", 1 - val - test)):
        got = np.bincount(labels[split[key]], minlength=len(class_counts))
        assert np.all(np.abs(got - np.asarray(class_counts) * frac) <= 1 + 1e-9), (key, got, class_counts, frac)
    # Repeats exactly for the same seed.
    again = stratified_split(labels, val, test, seed=seed)
    for key in split:
        np.testing.assert_array_equal(split[key], again[key])
        assert split[key].dtype == np.int64


@settings(max_examples=30, deadline=None)
@given(val=st.floats(allow_nan=True, allow_infinity=True), test=st.floats(min_value=-2, max_value=2))
def test_fractions_outside_the_open_interval_or_summing_to_one_are_refused(val, test):
    labels = np.repeat([0, 1], 50)
    valid = (val == 0 or 0 < val < 1) and (test == 0 or 0 < test < 1) and val + test < 1
    if valid:
        return
    with pytest.raises(ValueError, match=r"Expected (val_fraction|test_fraction|val_fraction \+ test_fraction)"):
        stratified_split(labels, val, test)


_CHILD = """
import json, sys
import numpy as np
from lightning_cnn import stratified_split
labels = np.random.default_rng(7).integers(0, 5, size=500)
s = stratified_split(labels, 0.2, 0.1, seed=int(sys.argv[1]))
print(json.dumps({k: v.tolist() for k, v in s.items()}))
"""


def test_two_processes_compute_the_same_split():
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, "11"], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    labels = np.random.default_rng(7).integers(0, 5, size=500)
    here = {k: v.tolist() for k, v in stratified_split(labels, 0.2, 0.1, seed=11).items()}
    assert json.loads(outs[0]) == here
