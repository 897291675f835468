"""The feature cache: keyed by image content, with a whole-batch memo that lasts one training step."""

from __future__ import annotations

import torch

from lightning_cnn.models.cache import FeatureCache


def test_the_same_images_in_another_tensor_find_their_features():
    cache = FeatureCache()
    x, feats = torch.rand(3, 1, 4, 4), torch.rand(3, 5)
    cache.store(x, feats)
    assert len(cache) == 3
    torch.testing.assert_close(cache.lookup(x.clone()[[2, 0, 1]]), feats[[2, 0, 1]])
    assert cache.lookup(torch.rand(3, 1, 4, 4)) is None


def test_the_memo_of_a_step_ends_with_the_step():
    cache = FeatureCache()
    x, feats = torch.rand(2, 1, 4, 4), torch.rand(2, 5)
    cache.store(x, feats)
    cache.begin_step()
    first = cache.lookup(x)
    assert cache.lookup(x) is first  # the step's batch is hashed once
    cache.end_step()
    x.add_(1.0)  # changed in place after the step: the content decides again
    assert cache.lookup(x) is None
