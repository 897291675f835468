"""Merging TTA views and ensemble members: pure tensor math against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_cnn.functional import (
    MERGE_MODES,
    ensemble_average,
    majority_vote,
    merge_log_probs,
    merge_predictions,
    vote_counts,
)


def _logits(seed: int, k: int, b: int, c: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(k, b, c, generator=torch.Generator().manual_seed(seed)) * scale


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 6),
    b=st.integers(1, 5),
    c=st.integers(2, 7),
    mode=st.sampled_from(["mean", "gmean", "max", "logits"]),
)
def test_merging_identical_predictions_returns_them(seed, k, b, c, mode):
    one = _logits(seed, 1, b, c)
    merged = merge_predictions(one.expand(k, b, c), mode)
    torch.testing.assert_close(merged, one[0].softmax(-1), rtol=1e-5, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6))
def test_vote_of_identical_predictions_picks_their_class(seed, k):
    one = _logits(seed, 1, 4, 5)
    merged = merge_predictions(one.expand(k, 4, 5), "vote")
    assert torch.equal(merged.argmax(-1), one[0].argmax(-1))
    assert torch.all(merged.max(-1).values > 0.99)


def test_mean_and_gmean_match_numpy():
    logits = _logits(0, 4, 3, 5)
    p = torch.softmax(logits.double(), -1).numpy()
    expected_mean = p.mean(0)
    g = np.exp(np.log(p).mean(0))
    expected_gmean = g / g.sum(-1, keepdims=True)
    np.testing.assert_allclose(merge_predictions(logits, "mean").numpy(), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(merge_predictions(logits, "gmean").numpy(), expected_gmean, rtol=1e-5)
    # The mean logit's softmax is the normalized geometric mean.
    np.testing.assert_allclose(merge_predictions(logits, "logits").numpy(), expected_gmean, rtol=1e-5)
    m = p.max(0)
    np.testing.assert_allclose(merge_predictions(logits, "max").numpy(), m / m.sum(-1, keepdims=True), rtol=1e-5)


def test_log_probs_are_the_log_of_the_probabilities_and_rows_sum_to_one():
    logits = _logits(1, 3, 4, 6)
    for mode in MERGE_MODES:
        log_p = merge_log_probs(logits, mode)
        torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(4))
        torch.testing.assert_close(merge_predictions(logits, mode), log_p.exp())


def test_infinite_logits_never_make_nan():
    logits = torch.tensor([[[math.inf, 0.0, -math.inf]], [[0.0, math.inf, 0.0]], [[-math.inf, 0.0, 1.0]]])
    for mode in MERGE_MODES:
        merged = merge_log_probs(logits, mode)
        assert not torch.isnan(merged).any(), mode
        torch.testing.assert_close(merged.exp().sum(-1), torch.ones(1))
    # Mean of probabilities: one-hot, one-hot, softmax([-inf, 0, 1]).
    third = torch.tensor([0.0, 0.0, 1.0]).softmax(-1) * torch.tensor([0.0, 1.0, 1.0])
    third = third / third.sum()
    expected = (torch.tensor([1.0, 0.0, 0.0]) + torch.tensor([0.0, 1.0, 0.0]) + third) / 3
    torch.testing.assert_close(merge_predictions(logits, "mean")[0], expected)


def test_large_logits_in_half_precision_stay_finite():
    logits = torch.tensor([[[60000.0, -60000.0]], [[-60000.0, 60000.0]]], dtype=torch.float16)
    merged = merge_log_probs(logits, "gmean")
    assert merged.dtype == torch.float32 and torch.isfinite(merged).all()


def test_vote_counts_and_majority_vote_against_a_loop():
    logits = _logits(2, 7, 50, 4)
    picks = logits.argmax(-1)
    counts = np.zeros((50, 4))
    for k in range(7):
        for b in range(50):
            counts[b, picks[k, b]] += 1
    np.testing.assert_array_equal(vote_counts(logits).numpy(), counts)
    mean_p = logits.softmax(-1).mean(0).numpy()
    expected = [max(range(4), key=lambda c, b=b: (counts[b, c], mean_p[b, c])) for b in range(50)]
    assert majority_vote(logits).tolist() == expected


def test_vote_tie_goes_to_the_higher_mean_probability():
    logits = torch.tensor([[[5.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])  # one vote each for 0 and 1
    assert majority_vote(logits).item() == 0
    share = merge_predictions(logits, "vote")[0]
    assert share[2] > 0  # never zero: the NLL stays finite
    assert abs(share[0].item() - 0.5) < 1e-3 and abs(share[1].item() - 0.5) < 1e-3


def test_weighted_ensemble_average():
    logits = _logits(3, 3, 2, 4)
    p = logits.softmax(-1)
    w = torch.tensor([1.0, 2.0, 1.0])
    expected = (p * (w / w.sum()).view(3, 1, 1)).sum(0)
    torch.testing.assert_close(ensemble_average(logits, w), expected)
    torch.testing.assert_close(ensemble_average(logits, torch.ones(3)), ensemble_average(logits))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"mode": "mena"},
            ValueError,
            "Expected mode to be one of ('mean', 'gmean', 'max', 'logits', 'vote'), but got 'mena'. Did you mean",
        ),
        ({"weights": torch.ones(2)}, ValueError, "Expected weights of shape [3] (one per prediction), but got (2,)."),
        ({"weights": torch.tensor([1.0, -1.0, 1.0])}, ValueError, "Expected non-negative weights"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error) as err:
        merge_log_probs(_logits(0, 3, 2, 4), **kwargs)
    assert message in str(err.value)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"Expected logits of shape \[K, B, C\]"):
        merge_predictions(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least one prediction"):
        merge_predictions(torch.zeros(0, 2, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        merge_predictions([[[0.0, 1.0]]])  # type: ignore[arg-type]
