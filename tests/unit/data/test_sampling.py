"""The seeded, resumable training order and the RNG state helpers."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from lightning_cnn.data.sampling import ResumableDataLoader, SeededSampler, capture_rng_state, restore_rng_state


def test_order_is_a_function_of_seed_and_epoch():
    a, b = SeededSampler(range(50), seed=7), SeededSampler(range(50), seed=7)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(SeededSampler(range(50), seed=8)) != list(SeededSampler(range(50), seed=7))


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 3), (7, 4)])
def test_ranks_get_equal_disjoint_shards_of_one_permutation(n, world):
    shards = [list(SeededSampler(range(n), seed=1, num_replicas=world, rank=r)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    assert sorted({i for s in shards for i in s}) == list(range(n))
    assert sum(len(s) for s in shards) - n < world  # only the padding repeats


def test_loader_resumes_mid_epoch_with_the_same_batches():
    data = torch.arange(23)
    full = ResumableDataLoader(data, sampler=SeededSampler(data, seed=3), batch_size=4)
    full.sampler.set_epoch(2)
    it = iter(full)
    seen = [next(it) for _ in range(3)]
    state = full.state_dict()
    assert state["epoch"] == 2 and state["batches"] == 3
    rest = list(it)
    resumed = ResumableDataLoader(data, sampler=SeededSampler(data, seed=3), batch_size=4)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning sets the epoch again: the pending skip stays
    again = list(resumed)
    assert len(again) == len(rest) == len(full) - 3
    assert all(torch.equal(x, y) for x, y in zip(again, rest, strict=True))
    assert torch.cat(seen + again).sort().values.tolist() == list(range(23))
    assert len(list(resumed)) == len(full)  # the next epoch is whole again


def test_loader_state_of_a_finished_epoch_starts_the_next_epoch():
    data = torch.arange(8)
    loader = ResumableDataLoader(data, sampler=SeededSampler(data, seed=0), batch_size=4)
    list(loader)
    other = ResumableDataLoader(data, sampler=SeededSampler(data, seed=0), batch_size=4)
    other.load_state_dict(loader.state_dict())
    assert other.sampler.epoch == 1 and len(list(other)) == 2


def test_loader_refuses_a_state_of_other_settings():
    data = torch.arange(8)
    state = ResumableDataLoader(data, sampler=SeededSampler(data, seed=0), batch_size=4).state_dict()
    other = ResumableDataLoader(data, sampler=SeededSampler(data, seed=0), batch_size=2)
    with pytest.raises(ValueError, match=r"checkpoint's loader had batch_size=4, this one has batch_size=2"):
        other.load_state_dict(state)


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match=r"Expected rank to be an int in \[0, 2\), but got 2"):
        SeededSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(TypeError, match="Expected sampler to be a SeededSampler"):
        ResumableDataLoader(range(4), sampler=torch.utils.data.SequentialSampler(range(4)))  # type: ignore[arg-type]


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    state = capture_rng_state()
    buffer = io.BytesIO()
    torch.save({"rng": state}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)["rng"]
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(loaded)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
