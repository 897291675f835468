"""Class-balanced and weighted draws: seeded, one global draw sharded over ranks, resumable mid-epoch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lightning_cnn import ArrayDataModule
from lightning_cnn.data.balanced import WeightedSeededSampler, check_sampler
from lightning_cnn.data.sampling import ResumableDataLoader, SeededSampler


def imbalanced(n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Three classes, 90 / 5 / 5 percent, with one distinct pixel value per sample (to tell draws apart)."""
    y = np.repeat([0, 1, 2], [n * 90 // 100, n * 5 // 100, n * 5 // 100])
    y = np.random.default_rng(seed).permutation(y)
    x = np.zeros((n, 1, 4, 4), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(n) / n
    return {"x": x, "y": y}


def epoch_labels(loader: ResumableDataLoader, epoch: int) -> np.ndarray:
    loader.sampler.set_epoch(epoch)
    return torch.cat([y for _, y in loader]).numpy()


def test_balanced_draws_give_every_class_a_third_each_epoch_at_the_training_split_size():
    dm = ArrayDataModule(**imbalanced(), sampler="balanced", batch_size=50)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, WeightedSeededSampler)
    draws = []
    for epoch in range(4):
        y = epoch_labels(loader, epoch)
        assert y.size == len(dm.split["train"])  # the epoch length stays the training split's size
        shares = np.bincount(y, minlength=3) / y.size
        assert np.all((shares >= 0.25) & (shares <= 0.42)), (epoch, shares)
        draws.append(y)
    assert not np.array_equal(draws[0], draws[1])  # another draw each epoch
    # The plain shuffle keeps the imbalance: the bar above is one it does not meet.
    plain = ArrayDataModule(**imbalanced(), batch_size=50)
    plain.setup("fit")
    assert np.bincount(epoch_labels(plain.train_dataloader(), 0))[0] / len(plain.split["train"]) > 0.85
    # Identical for the same seed, in a fresh DataModule.
    again = ArrayDataModule(**imbalanced(), sampler="balanced", batch_size=50)
    again.setup("fit")
    np.testing.assert_array_equal(epoch_labels(again.train_dataloader(), 0), draws[0])


def test_ranks_take_disjoint_parts_of_one_global_draw():
    weights = np.random.default_rng(0).random(101)
    whole = list(WeightedSeededSampler(weights, seed=3))
    shards = [WeightedSeededSampler(weights, seed=3, num_replicas=3, rank=r) for r in range(3)]
    assert [len(s) for s in shards] == [34, 34, 34]
    parts = [list(s) for s in shards]
    # Positions r, r + 3, ... of the same draw of 102 (101 rounded up to a multiple of the ranks).
    full = torch.multinomial(
        torch.as_tensor(weights), 102, replacement=True, generator=torch.Generator().manual_seed(3)
    )
    for r in range(3):
        assert parts[r] == full[r::3].tolist()
    assert len(whole) == 101 and whole == list(WeightedSeededSampler(weights, seed=3))
    assert len(list(WeightedSeededSampler(weights, num_samples=30, seed=3))) == 30


def test_weighted_draws_follow_sampler_weights_and_samples_per_epoch():
    data = imbalanced()
    weights = np.where(data["y"] == 0, 0.0, 1.0).tolist()  # never class 0
    dm = ArrayDataModule(**data, sampler="weighted", sampler_weights=weights, samples_per_epoch=300, batch_size=50)
    dm.setup("fit")
    y = epoch_labels(dm.train_dataloader(), 0)
    assert y.size == 300 and 0 not in y and {1, 2} <= set(y.tolist())


def test_a_balanced_loader_resumes_mid_epoch_with_the_same_remaining_draws():
    dm = ArrayDataModule(**imbalanced(), sampler="balanced", batch_size=32)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    it = iter(loader)
    seen = [next(it)[0] for _ in range(5)]
    state = loader.state_dict()
    assert state["order"].startswith("weighted:")
    rest = [x for x, _ in it]
    fresh = ArrayDataModule(**imbalanced(), sampler="balanced", batch_size=32)
    fresh.setup("fit")
    resumed = fresh.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    again = [x for x, _ in resumed]
    assert len(again) == len(rest) == len(loader) - len(seen)
    assert all(torch.equal(a, b) for a, b in zip(again, rest, strict=True))
    # A shuffled loader's mid-epoch state does not continue balanced draws.
    plain = ArrayDataModule(**imbalanced(), batch_size=32)
    plain.setup("fit")
    shuffled = plain.train_dataloader()
    next(iter(shuffled))
    with pytest.raises(ValueError, match=r"the checkpoint's loader had order='shuffle', this one has order='weighted:"):
        resumed.load_state_dict(shuffled.state_dict())
    assert isinstance(shuffled.sampler, SeededSampler) and shuffled.sampler.order_key == "shuffle"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"sampler": "balancd"},
            "Expected sampler to be one of ('shuffle', 'balanced', 'weighted'), but got 'balancd'.",
        ),
        ({"sampler": "weighted"}, "Expected sampler_weights to be one weight per sample with sampler='weighted'"),
        ({"sampler_weights": [1.0]}, "but got weights with sampler='shuffle'."),
        ({"samples_per_epoch": 10}, "Expected samples_per_epoch to be None with sampler='shuffle'"),
        ({"sampler": "balanced", "device_resident": True}, "sampler='balanced' draws through the training loader's"),
    ],
)
def test_inconsistent_sampler_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_sampler(
            kwargs.get("sampler", "shuffle"),
            kwargs.get("sampler_weights"),
            kwargs.get("samples_per_epoch"),
            kwargs.get("device_resident", False),
        )


def test_bad_weights_are_refused():
    with pytest.raises(
        ValueError, match=r"Expected weights to be finite numbers >= 0, not all 0, but got \[0.0, 0.0\]"
    ):
        WeightedSeededSampler([0.0, 0.0])
    with pytest.raises(ValueError, match=r"but got \[1.0, -1.0\]"):
        WeightedSeededSampler([1.0, -1.0])
