import re

import pytest
import torch

from lightning_cnn import ClassifierModule, SimpleCNN
from lightning_cnn.losses import LOSSES
from lightning_cnn.nn import ACTIVATIONS, INITS, NORMS, POOLS
from lightning_cnn.optim import OPTIMIZERS


@pytest.mark.parametrize(
    ("argument", "bad", "valid"),
    [
        ("activation", "relux", ACTIVATIONS),
        ("pool", "maxx", POOLS),
        ("norm", "batchnorm", NORMS),
        ("init", "xavier", INITS),
        ("loss", "crossentropy", LOSSES),
        ("optimizer", "adamm", OPTIMIZERS),
    ],
)
def test_unknown_names_fail_in_python_with_the_valid_choices(argument, bad, valid):
    with pytest.raises(ValueError) as err:
        SimpleCNN(**{argument: bad})
    message = str(err.value)
    assert f"Expected {argument} to be one of" in message
    assert repr(bad) in message
    for name in valid:
        assert repr(name) in message


def test_loss_mixture_names_are_checked():
    with pytest.raises(ValueError, match="Expected loss to be one of .* but got 'msee'"):
        SimpleCNN(loss={"cross_entropy": 1.0, "msee": 0.5})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "Expected num_classes to be an int >= 2, but got 1."),
        ({"channels": ()}, "Expected channels to list at least one block width"),
        ({"channels": (8, 0)}, r"Expected channels\[1\] to be > 0, but got 0."),
        ({"dropout": 1.0}, r"Expected dropout to be in \[0, 1\), but got 1.0."),
        ({"kernel_size": 0}, "Expected kernel_size to be > 0, but got 0."),
        ({"lr": -0.1}, "Expected lr to be > 0, but got -0.1."),
        ({"global_pool": "flatten"}, "global_pool='flatten' needs input_size"),
        ({"stochastic_depth": 0.2}, "stochastic_depth=0.2 drops residual branches, so it needs residual=True."),
        ({"padding": "full"}, "Expected padding to be an int >= 0, 'same' or 'valid', but got 'full'."),
    ],
)
def test_bad_numbers_fail_with_clear_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimpleCNN(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"class_weights": "balanced", "label_smoothing": 2.0},
            "Expected label_smoothing to be in [0, 1), but got 2.0.",
        ),
        ({"label_smoothing": -0.1}, "Expected label_smoothing to be in [0, 1), but got -0.1."),
        ({"class_weights": "balanced", "huber_delta": -1}, "Expected huber_delta to be > 0, but got -1."),
        ({"loss": "pseudo_huber", "huber_delta": 0.0}, "Expected huber_delta to be > 0, but got 0.0."),
        (
            {"loss": "weighted_cross_entropy", "class_weights": [1.0, 2.0]},
            "Expected class_weights to be a list of num_classes=10 numbers >= 0, but got [1.0, 2.0] (2 numbers).",
        ),
        (
            {"loss": "weighted_cross_entropy", "class_weights": [1.0] * 9 + [-1.0]},
            "Expected class_weights to be a list of num_classes=10 numbers >= 0, but got",
        ),
        (
            {"loss": "sigmoid_cross_entropy", "pos_weight": [2.0, 2.0, 2.0]},
            "Expected pos_weight to be a number >= 0 or a list of num_classes=10 numbers >= 0, but got [2.0, 2.0, 2.0]",
        ),
        (
            {"class_weights": "balanced", "pos_weight": [2.0, 2.0, 2.0]},
            "Expected pos_weight to be a number >= 0 or a list of num_classes=10 numbers >= 0, but got [2.0, 2.0, 2.0]",
        ),
        ({"top_k": -4}, "Expected top_k to be an int >= 1, but got -4."),
        ({"top_k": 0}, "Expected top_k to be an int >= 1, but got 0."),
        ({"top_k": 2.5}, "Expected top_k to be an int >= 1, but got 2.5."),
    ],
)
def test_loss_and_metric_options_are_checked_in_init(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleCNN(**kwargs)


def test_valid_loss_options_with_balanced_weights_build():
    model = SimpleCNN(loss="weighted_cross_entropy", class_weights="balanced", label_smoothing=0.1, top_k=1)
    assert model.criterion is None  # built in setup() from the DataModule's weights
    model = SimpleCNN(num_classes=3, loss="sigmoid_cross_entropy", pos_weight=[1.0, 2.0, 3.0], top_k=3)
    assert model.criterion.pos_weight.tolist() == [1.0, 2.0, 3.0]


def test_base_without_network_says_what_to_do():
    with pytest.raises(NotImplementedError, match="assign self.net in __init__ or override forward"):
        ClassifierModule(10)(torch.zeros(1, 1, 8, 8))


def test_forward_and_predict_shapes():
    model = SimpleCNN(num_classes=7, in_channels=3, channels=(8, 16), hidden=(16,)).eval()
    x = torch.randn(5, 3, 12, 12)
    assert model(x).shape == (5, 7)
    probs = model.predict_step((x, torch.zeros(5, dtype=torch.long)), 0)
    assert probs.shape == (5, 7)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))


def test_hyperparameters_rebuild_the_module():
    model = SimpleCNN(channels=(8,), hidden=(), activation="gelu", optimizer="sgd")
    clone = SimpleCNN(**model.hparams)
    assert [p.shape for p in clone.parameters()] == [p.shape for p in model.parameters()]
    assert clone.hparams["activation"] == "gelu"
