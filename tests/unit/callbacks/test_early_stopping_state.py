"""EarlyStopping as code written for Lightning's expects it: its errors, a state that compares with ``==``, pickling."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from lightning_cnn import EarlyStopping
from lightning_cnn.callbacks import EarlyStoppingArgumentError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "maximum"}, "Expected mode to be one of ('min', 'max'), but got 'maximum'. Did you mean 'max'?"),
        ({"patience": -1}, "Expected patience to be >= 0, but got -1."),
        ({"start_from_epoch": -3}, "Expected start_from_epoch to be >= 0, but got -3."),
        ({"min_delta": -0.5}, "Expected min_delta to be >= 0, but got -0.5."),
    ],
)
def test_a_bad_argument_is_a_value_error_and_lightnings_misconfiguration(options, message):
    for kind in (ValueError, MisconfigurationException, EarlyStoppingArgumentError):
        with pytest.raises(kind) as err:
            EarlyStopping(**options)
        assert str(err.value) == message


def weights_only_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_state_outside_a_trainer_compares_with_eq_and_brings_the_weights_back():
    stop = EarlyStopping(patience=2)
    stop.best_score, stop.best_epoch, stop.wait_count = torch.tensor(0.5), 2, 1
    stop._best_weights = {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(3)}
    state = stop.state_dict()
    assert not [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.numel() > 1]
    assert not [k for k, v in state.items() if isinstance(v, dict)]
    assert state == stop.state_dict()  # taking it twice gives equal states, and == answers a plain bool
    loaded = weights_only_round_trip(state)
    assert loaded == state
    again = EarlyStopping(patience=2)
    again.load_state_dict(loaded)
    assert again.state_dict() == state
    assert again.best_weights is not None and torch.equal(again.best_weights["w"], torch.arange(6.0).view(2, 3))
    stop.wait_count = 0
    assert stop.state_dict() != state


def test_a_state_of_an_earlier_version_with_the_weights_as_tensors_still_loads():
    stop = EarlyStopping()
    old = {"wait_count": 1, "stopped_epoch": 0, "best_score": torch.tensor(0.3), "patience": 3, "best_epoch": 4}
    stop.load_state_dict({**old, "best_weights": {"w": torch.zeros(2)}})
    assert stop.best_epoch == 4 and stop.best_weights is not None
    assert torch.equal(stop.best_weights["w"], torch.zeros(2))
    assert stop.stopping_reason == EarlyStoppingReason.NOT_STOPPED  # a state without a reason: not stopped


def test_the_stopping_reason_survives_a_round_trip():
    stop = EarlyStopping(patience=3)
    stop.stopping_reason, stop.stopping_reason_message = EarlyStoppingReason.DIVERGENCE_THRESHOLD, "diverged"
    again = EarlyStopping(patience=3)
    again.load_state_dict(weights_only_round_trip(stop.state_dict()))
    assert again.stopping_reason == EarlyStoppingReason.DIVERGENCE_THRESHOLD
    assert again.stopping_reason_message == "diverged"


def test_pickling_keeps_every_attribute():
    stop = EarlyStopping(monitor="val/acc", mode="max", patience=4, start_from_epoch=2)
    loaded = pickle.loads(pickle.dumps(stop))
    assert vars(loaded) == vars(stop)
    assert loaded.state_key == stop.state_key == "EarlyStopping{'monitor': 'val/acc', 'mode': 'max'}"
