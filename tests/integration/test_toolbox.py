"""Every choice of the toolbox by name, trained for real on digits through Lightning."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from lightning_cnn import DigitsDataModule, SimpleCNN
from lightning_cnn.cli import CNNCli
from lightning_cnn.losses import LOSSES, ClassificationLoss, LossMixture
from lightning_cnn.nn import ACTIVATIONS, GLOBAL_POOLS, INITS, NORMS, POOLS
from lightning_cnn.optim import OPTIMIZERS, SCHEDULERS, MuonWithAdamW

TINY: dict[str, Any] = {"channels": (4, 8), "hidden": (16,)}


@pytest.fixture(scope="module")
def digits() -> tuple[DigitsDataModule, torch.Tensor, torch.Tensor]:
    """The digits DataModule and a fixed batch of 128 raw training images to measure the loss on (models normalize)."""
    dm = DigitsDataModule(batch_size=64)
    dm.setup("fit")
    items = [dm.train_set[i] for i in range(128)]
    x = torch.stack([torch.as_tensor(i[0]) for i in items])
    y = torch.tensor([int(i[1]) for i in items])
    return dm, x, y


def batch_loss(model: SimpleCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    """The model's own training loss on the fixed batch (train mode, fixed seed for dropout and pooling)."""
    model.train()
    torch.manual_seed(1234)
    with torch.no_grad():
        return model._loss(model(x), y).item()


def fit_steps(model: SimpleCNN, digits, fast_trainer: dict, steps: int = 12, **trainer_kwargs) -> tuple[float, float]:
    dm, x, y = digits
    before = batch_loss(model, x, y) if model.criterion is not None else math.nan
    trainer_kwargs = {"max_steps": steps, "limit_val_batches": 0, "num_sanity_val_steps": 0, **trainer_kwargs}
    trainer = pl.Trainer(**fast_trainer, **trainer_kwargs)
    trainer.fit(model, dm)
    after = batch_loss(model, x, y)
    return before, after


def cycle(options, i: int):
    options = list(options)
    return options[i % len(options)]


# One case per activation; every other architecture choice cycles through its names alongside, so each
# name of each choice (activation, pool, norm, init, global pool, padding, residual, regularizer) trains.
ARCH_CASES = [
    {
        "activation": act,
        "pool": cycle(POOLS, i),
        "norm": cycle(NORMS, i),
        "init": cycle(INITS, i),
        "global_pool": cycle(GLOBAL_POOLS, i),
        "padding": cycle(("same", 1, "same"), i),
        "kernel_size": cycle((3, 3, 5), i),
        "convs_per_block": cycle((2, 1), i),
        "residual": cycle((False, True), i),
        "hidden": cycle(((16,), (), (16, 16)), i),
        "dropout": cycle((0.0, 0.2), i),
        "spatial_dropout": cycle((0.0, 0.0, 0.1), i),
        "drop_connect": cycle((0.0, 0.0, 0.0, 0.3), i),
        "stochastic_depth": cycle((0.0, 0.3), i),
        "norm_groups": 2,
    }
    for i, act in enumerate(ACTIVATIONS)
]


def test_arch_cases_cover_every_name():
    for key, names in (("activation", ACTIVATIONS), ("pool", POOLS), ("norm", NORMS), ("init", INITS)):
        assert {c[key] for c in ARCH_CASES} == set(names), key
    assert {c["global_pool"] for c in ARCH_CASES} == set(GLOBAL_POOLS)
    assert any(c["drop_connect"] and c["stochastic_depth"] for c in ARCH_CASES)


@pytest.mark.parametrize("case", ARCH_CASES, ids=lambda c: "-".join(str(c[k]) for k in ("activation", "pool", "norm")))
def test_every_architecture_name_trains_and_lowers_the_loss(case, digits, fast_trainer):
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(channels=(4, 8), input_size=8, optimizer="adam", lr=1e-2, **case)
    before, after = fit_steps(model, digits, fast_trainer, steps=30)
    assert after < 0.99 * before, (before, after)


LOSS_CASES: list[Any] = [
    *LOSSES,
    {"cross_entropy": 1.0, "mse": 0.5},
    {"sigmoid_cross_entropy": 0.5, "kl_div": 0.5, "l1": 1.0},
]
LOSS_OPTIONS: dict[str, dict[str, Any]] = {
    "cross_entropy": {"label_smoothing": 0.1},
    "weighted_cross_entropy": {"class_weights": [1.0, 2.0, 1.0, 1.0, 0.5, 1.0, 1.0, 3.0, 1.0, 1.0]},
    "sigmoid_cross_entropy": {"pos_weight": 2.0},
    "pseudo_huber": {"huber_delta": 0.5},
}


@pytest.mark.parametrize("loss", LOSS_CASES, ids=str)
def test_every_loss_trains_and_lowers_itself(loss, digits, fast_trainer):
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(
        **TINY, loss=loss, optimizer="adam", lr=1e-2, **(LOSS_OPTIONS.get(loss, {}) if isinstance(loss, str) else {})
    )
    expected = LossMixture if isinstance(loss, dict) else ClassificationLoss
    assert isinstance(model.criterion, expected)
    before, after = fit_steps(model, digits, fast_trainer)
    assert after < 0.99 * before, (before, after)


def test_balanced_class_weights_come_from_the_datamodule(digits, fast_trainer):
    dm = digits[0]
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(**TINY, loss="weighted_cross_entropy", class_weights="balanced")
    assert model.criterion is None  # built in setup, when the training labels are known
    _, _after = fit_steps(model, digits, fast_trainer, steps=2)
    labels = np.asarray(dm.labels())[dm.split["train"]]
    counts = np.bincount(labels, minlength=10)
    by_hand = len(labels) / (10 * counts)  # n / (k * n_c)
    assert isinstance(model.criterion, ClassificationLoss) and model.criterion.class_weights is not None
    np.testing.assert_allclose(model.criterion.class_weights.numpy(), by_hand, rtol=1e-6)
    np.testing.assert_allclose(model.criterion.class_weights.numpy(), dm.class_weights, rtol=1e-6)
    assert by_hand.min() < by_hand.max()  # digits are not perfectly balanced: the weights differ
    with pytest.raises(ValueError, match="takes the weights from the DataModule's `class_weights`"):
        pl.Trainer(max_steps=1, **fast_trainer).fit(
            SimpleCNN(**TINY, class_weights="balanced"), train_dataloaders=dm.train_dataloader()
        )


class CountSteps(pl.Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches += 1


#: val accuracy each optimizer must reach after OPTIMIZER_STEPS steps of batch 64: chance (0.10) + 0.15 margin
OPTIMIZER_MARGIN = 0.15
OPTIMIZER_STEPS = 30


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_table_each_trains_simple_cnn_above_chance(name, digits, fast_trainer):
    dm, _x, _y = digits
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(channels=(8, 16), hidden=(32,), optimizer=name)
    if name == "sparse_adam":
        with pytest.raises(ValueError, match="needs sparse gradients.*use optimizer='adam'"):
            pl.Trainer(max_steps=1, **fast_trainer).fit(model, dm)
        return
    calls = {"n": 0}
    step = model.training_step

    def counted(*args, **kwargs):
        calls["n"] += 1
        return step(*args, **kwargs)

    model.training_step = counted  # type: ignore[method-assign]
    before, after = fit_steps(model, digits, fast_trainer, steps=OPTIMIZER_STEPS)
    trainer = pl.Trainer(**fast_trainer)
    acc = trainer.validate(model, dm, verbose=False)[0]["val/acc"]
    print(f"{name}: loss on a fixed batch {before:.3f} -> {after:.3f}, val acc {acc:.3f}")
    assert after < 0.9 * before
    assert acc > 0.10 + OPTIMIZER_MARGIN
    if name == "lbfgs":
        assert calls["n"] > OPTIMIZER_STEPS  # Lightning's closure was called several times per LBFGS step
    else:
        assert calls["n"] == OPTIMIZER_STEPS


class LRLog(pl.Callback):
    def __init__(self) -> None:
        self.epoch_lrs: list[float] = []
        self.step_lrs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.step_lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def cosine(e: int, span: int, lr: float = 0.1) -> float:
    return lr / 2 * (1 + math.cos(math.pi * e / span))


SCHEDULE_CASES: list[tuple[str, dict[str, Any], int, list[float]]] = [
    ("step", {"step_size": 2, "gamma": 0.5}, 0, [0.1, 0.1, 0.05, 0.05]),
    ("multistep", {"milestones": [1, 3], "gamma": 0.1}, 0, [0.1, 0.01, 0.01, 0.001]),
    ("exponential", {"gamma": 0.5}, 0, [0.1, 0.05, 0.025, 0.0125]),
    ("cosine", {}, 0, [cosine(e, 4) for e in range(4)]),
    ("cosine_warm_restarts", {"T_0": 2}, 0, [0.1, cosine(1, 2), 0.1, cosine(1, 2)]),
    # threshold=1: no epoch counts as an improvement of val/loss, so with patience 0 the LR halves every epoch
    ("plateau", {"patience": 0, "factor": 0.5, "threshold": 1.0}, 0, [0.1, 0.05, 0.025, 0.0125]),
    # linear warm-up from 1% over 2 epochs, then cosine over the remaining 2
    ("cosine", {}, 2, [0.001, 0.1 * (0.01 + 0.99 / 2), 0.1, cosine(1, 2)]),
    ("exponential", {"gamma": 0.5}, 1, [0.001, 0.1, 0.05, 0.025]),
    # warm-up over 2 epochs (val/loss not watched), then the plateau halving of the first case
    ("plateau", {"patience": 0, "factor": 0.5, "threshold": 1.0}, 2, [0.001, 0.1 * (0.01 + 0.99 / 2), 0.1, 0.05]),
]


def test_schedule_cases_cover_every_scheduler():
    assert {c[0] for c in SCHEDULE_CASES} | {"one_cycle"} == set(SCHEDULERS)


@pytest.mark.parametrize(("name", "options", "warmup", "expected"), SCHEDULE_CASES)
def test_scheduler_changes_the_lr_as_expected_in_a_trainer(name, options, warmup, expected, digits, fast_trainer):
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(**TINY, optimizer="sgd", lr=0.1, scheduler=name, scheduler_options=options, warmup_epochs=warmup)
    log = LRLog()
    trainer = pl.Trainer(
        max_epochs=4,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=[log],
        **fast_trainer,
    )
    trainer.fit(model, digits[0])
    assert log.epoch_lrs == pytest.approx(expected, rel=1e-6)


def test_one_cycle_steps_every_batch(digits, fast_trainer):
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(**TINY, optimizer="sgd", lr=0.1, scheduler="one_cycle")
    log = LRLog()
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=4, limit_val_batches=0, callbacks=[log], **fast_trainer)
    trainer.fit(model, digits[0])
    lrs = log.step_lrs
    assert len(lrs) == 12 and len(set(lrs)) == 12  # a new LR at every batch
    assert lrs[0] == pytest.approx(0.1 / 25)  # OneCycleLR starts at max_lr / div_factor
    peak = lrs.index(max(lrs))
    assert max(lrs) > 0.09 and 0 < peak < 11
    assert all(a < b for a, b in itertools.pairwise(lrs[: peak + 1]))  # rises to the peak ...
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))  # ... then anneals
    assert lrs[-1] < 0.01


def test_muon_trains_checkpoints_and_resumes_with_a_scheduler(digits, fast_trainer, tmp_path: Path):
    dm = digits[0]
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(**TINY, optimizer="muon", lr=1e-2, scheduler="exponential", scheduler_options={"gamma": 0.5})
    log = LRLog()
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=0, callbacks=[log], **fast_trainer)
    trainer.fit(model, dm)
    assert isinstance(trainer.optimizers[0], MuonWithAdamW)
    assert log.epoch_lrs == pytest.approx([1e-2, 5e-3])
    ckpt_path = tmp_path / "muon.ckpt"
    trainer.save_checkpoint(ckpt_path)
    saved = torch.load(ckpt_path, weights_only=True)["optimizer_states"][0]

    class CheckRestored(pl.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            state = trainer.optimizers[0].state_dict()
            assert [g["lr"] for g in state["param_groups"]] == [g["lr"] for g in saved["param_groups"]]
            assert state["state"].keys() == saved["state"].keys()
            for k, s in saved["state"].items():
                for name, value in s.items():
                    torch.testing.assert_close(state["state"][k][name], value, rtol=0, atol=0)
            self.checked = True

    check = CheckRestored()
    resumed = SimpleCNN(**TINY, optimizer="muon", lr=1e-2, scheduler="exponential", scheduler_options={"gamma": 0.5})
    log2 = LRLog()
    trainer2 = pl.Trainer(
        max_epochs=3, limit_train_batches=3, limit_val_batches=0, callbacks=[check, log2], **fast_trainer
    )
    trainer2.fit(resumed, dm, ckpt_path=ckpt_path)
    assert check.checked and log2.epoch_lrs == pytest.approx([2.5e-3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"global_pool": "mean"}, f"Expected global_pool to be one of {GLOBAL_POOLS}, but got 'mean'."),
        ({"scheduler": "cosin"}, f"Expected scheduler to be one of {SCHEDULERS}, but got 'cosin'."),
        ({"class_weights": "balance"}, "Expected class_weights to be one of ('balanced',), but got 'balance'."),
        ({"loss": {"cross_entropy": 1.0, "msee": 0.5}}, f"Expected loss to be one of {LOSSES}, but got 'msee'."),
    ],
)
def test_more_unknown_names_fail_in_python_with_the_valid_choices(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleCNN(**TINY, **kwargs)


QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"]
QUIET = [
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--trainer.logger",
    "false",
]


def test_cli_loss_mixture_from_a_mapping(in_tmp):
    cli = CNNCli(
        args=["fit", "--model.loss", "{cross_entropy: 1.0, mse: 0.5}", "--model.channels", "[4, 8]", *QUICK, *QUIET]
    )
    assert isinstance(cli.model.criterion, LossMixture)
    assert cli.model.criterion.weights == {"cross_entropy": 1.0, "mse": 0.5}
    assert cli.trainer.current_epoch == 1


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [
        ("--model.init", "xavier", "kaiming_normal"),
        ("--model.global_pool", "mean", "flatten"),
        ("--model.scheduler", "cosin", "cosine_warm_restarts"),
    ],
)
def test_cli_bad_names_list_the_choices(in_tmp, capsys, option, value, listed):
    with pytest.raises(SystemExit) as err:
        CNNCli(args=["fit", option, value, *QUICK, *QUIET])
    assert err.value.code != 0
    message = capsys.readouterr().err
    assert value in message and listed in message


def test_cli_sparse_adam_fails_naming_the_replacement(in_tmp):
    with pytest.raises(ValueError, match="use optimizer='adam'"):
        CNNCli(args=["fit", "--model.optimizer", "sparse_adam", "--model.channels", "[4, 8]", *QUICK, *QUIET])


@pytest.mark.slow
def test_default_simple_cnn_reaches_0985_test_accuracy_mean_of_3_seeds(fast_trainer):
    accs = []
    for seed in (0, 1, 2):
        pl.seed_everything(seed, verbose=False)
        model, dm = SimpleCNN(), DigitsDataModule()
        trainer = pl.Trainer(max_epochs=15, **fast_trainer)
        trainer.fit(model, dm)
        accs.append(trainer.test(model, dm, verbose=False)[0]["test/acc"])
    mean = sum(accs) / len(accs)
    print(f"default SimpleCNN test accuracy on digits, seeds 0-2: {[round(a, 4) for a in accs]}, mean {mean:.4f}")
    assert mean >= 0.985
