"""Merging multi-label predictions label by label, and the labels above a threshold."""

from __future__ import annotations

import pytest
import torch

from lightning_cnn.functional import MERGE_MODES, labels_above, merge_label_probs


@pytest.mark.parametrize("mode", MERGE_MODES)
def test_merging_identical_predictions_returns_their_probabilities(mode):
    logits = torch.randn(1, 5, 3).expand(4, 5, 3)
    merged = merge_label_probs(logits, mode)
    if mode == "vote":  # a share of yes-votes: 1 or 0 (plus the tie-breaking share of the mean)
        assert torch.equal(merged > 0.5, logits[0].sigmoid() > 0.5)
    else:
        torch.testing.assert_close(merged, logits[0].sigmoid())


def test_mean_is_the_mean_sigmoid_and_rows_do_not_sum_to_one():
    logits = torch.tensor([[[3.0, 3.0]], [[-1.0, 1.0]]])
    merged = merge_label_probs(logits, "mean")
    torch.testing.assert_close(merged, logits.sigmoid().mean(0))
    assert merged.sum() > 1.0


def test_vote_is_the_majority_per_label_and_a_tie_follows_the_mean():
    # label 0: 2 of 3 say yes; label 1: 1 of 3 says yes (though very sure).
    logits = torch.tensor([[[0.1, 9.0]], [[0.2, -0.1]], [[-5.0, -0.1]]])
    assert (merge_label_probs(logits, "vote") > 0.5).tolist() == [[True, False]]
    assert (merge_label_probs(logits, "mean") > 0.5).tolist() == [[False, True]]  # the mean says otherwise
    tie = torch.tensor([[[4.0]], [[-1.0]]])  # one vote each; the mean probability is above 0.5
    assert merge_label_probs(tie, "vote").item() > 0.5
    assert merge_label_probs(-tie, "vote").item() < 0.5


def test_geometric_mean_of_a_yes_no_question_is_the_sigmoid_of_the_mean_logit():
    logits = torch.randn(3, 4, 2)
    p = logits.sigmoid()
    yes, no = p.log().mean(0).exp(), (1 - p).log().mean(0).exp()
    torch.testing.assert_close(merge_label_probs(logits, "gmean"), yes / (yes + no))


def test_bad_mode_and_shape_are_refused():
    with pytest.raises(ValueError, match="Expected merge to be one of"):
        merge_label_probs(torch.zeros(1, 2, 3), "median")
    with pytest.raises(ValueError, match=r"Expected logits of shape \[K, B, L\]"):
        merge_label_probs(torch.zeros(2, 3), "mean")


def test_labels_above_a_threshold():
    probs = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.4, 0.3]])
    assert labels_above(probs, ["a", "b", "c"]) == [["a", "c"], []]
    assert labels_above(probs, ["a", "b", "c"], threshold=0.25) == [["a", "c"], ["b", "c"]]
    with pytest.raises(ValueError, match=r"Expected probabilities \[B, 2\]"):
        labels_above(probs, ["a", "b"])
