"""Constructors, errors, state and the learning-rate schedule of the training callbacks (no Trainer)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping

from lightning_cnn import EarlyStopping, SnapshotBest, SnapshotEnsemble, cyclic_cosine_lr
from lightning_cnn.callbacks import __all__ as exported


def test_exports_are_sorted_and_reachable_from_the_root():
    import lightning_cnn

    assert exported == sorted(exported)
    for name in ("EarlyStopping", "SnapshotBest", "SnapshotEnsemble"):
        assert name in exported and getattr(lightning_cnn, name).__module__.startswith("lightning_cnn.callbacks")


def test_callbacks_do_not_import_the_models():
    import ast
    from pathlib import Path

    import lightning_cnn.callbacks as package

    for name in ("early_stopping.py", "snapshot.py", "snapshot_ensemble.py"):
        tree = ast.parse((Path(package.__file__).parent / name).read_text())
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in modules if m.startswith("lightning_cnn.models")], name


def test_early_stopping_keeps_lightnings_options():
    stop = EarlyStopping(
        monitor="val/acc", mode="max", patience=4, min_delta=0.01, stopping_threshold=0.99, divergence_threshold=0.1
    )
    assert isinstance(stop, LightningEarlyStopping)
    assert (stop.monitor, stop.mode, stop.patience, stop.min_delta) == ("val/acc", "max", 4, 0.01)
    assert stop.stopping_threshold == 0.99 and stop.divergence_threshold == 0.1
    assert stop.restore_best_weights is True and stop.start_from_epoch == 0 and stop.best_epoch == -1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: EarlyStopping(mode="mx"),
            "Expected mode to be one of ('min', 'max'), but got 'mx'. Did you mean 'max'?",
        ),
        (lambda: EarlyStopping(patience=-1), "Expected patience to be >= 0, but got -1."),
        (lambda: EarlyStopping(start_from_epoch=-2), "Expected start_from_epoch to be >= 0, but got -2."),
        (lambda: SnapshotBest(mode="minimum"), "Expected mode to be one of ('min', 'max'), but got 'minimum'."),
        (lambda: SnapshotBest(storage="gpu"), "Expected storage to be one of ('cpu', 'disk'), but got 'gpu'."),
        (lambda: SnapshotEnsemble(cycles=0), "Expected cycles to be an int >= 1, but got 0."),
        (lambda: SnapshotEnsemble(lr_max=0.0), "Expected lr_max to be > 0, but got 0.0."),
        (
            lambda: SnapshotEnsemble(lr_max=0.1, lr_min=0.2),
            "Expected lr_min <= lr_max, but got lr_min=0.2 and lr_max=0.1.",
        ),
        (lambda: SnapshotEnsemble(storage="ram"), "Expected storage to be one of ('cpu', 'disk'), but got 'ram'."),
    ],
)
def test_bad_arguments_name_the_argument_and_the_choices(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value).startswith(message)


def test_two_instances_have_distinct_state_keys():
    assert EarlyStopping(monitor="val/loss").state_key != EarlyStopping(monitor="val/acc", mode="max").state_key
    assert SnapshotBest().state_key != SnapshotBest(monitor="val/acc", mode="max").state_key
    assert SnapshotEnsemble(cycles=3).state_key != SnapshotEnsemble(cycles=5).state_key


def weights_only_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_survives_a_weights_only_checkpoint():
    stop = EarlyStopping(patience=2)
    stop.best_score, stop.best_epoch, stop.wait_count = torch.tensor(0.25), 3, 1
    stop._best_weights = {"w": torch.arange(4.0)}
    again = EarlyStopping(patience=2)
    again.load_state_dict(weights_only_round_trip(stop.state_dict()))
    assert (again.best_epoch, again.wait_count, again.best_score.item()) == (3, 1, 0.25)
    assert again.best_weights is not None and torch.equal(again.best_weights["w"], torch.arange(4.0))

    snap = SnapshotBest()
    snap.best_score, snap.best_epoch = torch.tensor(0.5), 2
    state = weights_only_round_trip(snap.state_dict())
    assert state == {"best_score": torch.tensor(0.5), "best_epoch": 2, "best_model_path": ""}

    ens = SnapshotEnsemble(cycles=2)
    ens._base_lrs, ens._taken, ens._snapshots = [[0.1, 0.01]], 1, [{"w": torch.ones(2)}]
    restored = SnapshotEnsemble(cycles=2)
    restored.load_state_dict(weights_only_round_trip(ens.state_dict()))
    assert restored._base_lrs == [[0.1, 0.01]] and len(restored.snapshots) == 1
    assert torch.equal(restored.snapshots[0]["w"], torch.ones(2))


@pytest.mark.parametrize(("total", "cycles"), [(100, 5), (37, 4), (10, 1), (5, 5)])
def test_cyclic_cosine_restarts_at_each_cycle(total, cycles):
    lrs = [cyclic_cosine_lr(s, total, cycles, lr_max=0.2, lr_min=0.01) for s in range(total)]
    starts = [round(k * total / cycles) for k in range(cycles)]
    assert [s for s in range(total) if s == 0 or lrs[s] >= lrs[s - 1]] == starts
    for s in starts:
        assert lrs[s] == pytest.approx(0.2)
    assert all(0.01 <= lr <= 0.2 + 1e-12 for lr in lrs)
    ends = [round((k + 1) * total / cycles) - 1 for k in range(cycles)]
    for start, end in zip(starts, ends, strict=True):
        expected = 0.01 + 0.095 * (1 + math.cos(math.pi * (end - start) / (end - start + 1)))
        assert lrs[end] == pytest.approx(expected)
