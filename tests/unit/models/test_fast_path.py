"""The fast-path and lean flags of ClassifierModule: channels_last, compile, log_train_step, bf16-mixed."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightning_cnn import DigitsDataModule, SimpleCNN, TransferClassifier


def _convs(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def _fit(model, fast_trainer, **kwargs):
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2, **(fast_trainer | kwargs))
    trainer.fit(model, DigitsDataModule(batch_size=64))
    return trainer


@pytest.mark.parametrize(("flag", "expected"), [(None, True), (True, True), (False, False)])
def test_channels_last_on_cpu(flag, expected, fast_trainer):
    model = SimpleCNN(channels=(4, 8), hidden=(), channels_last=flag)
    assert model.hparams["channels_last"] is flag
    assert model.uses_channels_last() is (flag is True)  # no trainer yet: auto is off
    _fit(model, fast_trainer)
    assert model.uses_channels_last() is expected
    # Weights with more than one input channel tell the formats apart (a [O, 1, k, k] weight is both).
    weights = [w for w in _convs(model) if w.shape[1] > 1]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) is expected for w in weights)
    x, _ = model.train()._unpack((torch.randn(2, 3, 4, 4), torch.zeros(2)))
    assert x.is_contiguous(memory_format=torch.channels_last) is expected
    x, _ = model.eval()._unpack((torch.randn(2, 3, 4, 4), torch.zeros(2)))
    assert x.is_contiguous()  # evaluation inputs stay as they come


def test_channels_last_checkpoint_loads_into_a_plain_model(fast_trainer, tmp_path):
    model = SimpleCNN(channels=(4, 8), hidden=(), channels_last=True)
    trainer = _fit(model, fast_trainer)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = SimpleCNN.load_from_checkpoint(tmp_path / "m.ckpt", channels_last=False)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))


def test_log_train_step_false_logs_epoch_only(fast_trainer):
    logged: dict[str, set] = {"step": set(), "epoch": set()}

    class Spy(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            logged["step"] |= set(trainer.callback_metrics)

    for flag in (True, False):
        logged["step"] = set()
        model = SimpleCNN(channels=(4, 8), hidden=(), log_train_step=flag)
        trainer = _fit(model, fast_trainer, callbacks=[Spy()])
        assert "train/loss" in trainer.callback_metrics and "train/acc" in trainer.callback_metrics
        # The epoch's names do not depend on the flag (the logged names of the design's contract).
        assert {"train/loss", "train/acc"} <= set(trainer.logged_metrics)
        assert "train/loss_epoch" not in trainer.logged_metrics
        assert ("train/loss_step" in logged["step"]) is flag
        assert any(k.startswith("train/loss") for k in trainer.progress_bar_metrics) is flag


def test_compile_compiles_the_net_in_place(monkeypatch, fast_trainer):
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: calls.append(self))
    model = SimpleCNN(channels=(4, 8), hidden=(), compile=True)
    keys = set(model.state_dict())
    _fit(model, fast_trainer)
    assert calls == [model.net]  # once, though setup runs again for validation
    assert set(model.state_dict()) == keys


def test_bf16_mixed_runs_on_cpu(fast_trainer):
    for model in (
        SimpleCNN(channels=(4, 8), hidden=()),
        TransferClassifier(backbone="test_resnet", in_channels=1, finetune="full"),
    ):
        trainer = _fit(model, fast_trainer, precision="bf16-mixed")
        assert trainer.global_step == 3 and "val/loss" in trainer.callback_metrics
        if isinstance(model, SimpleCNN):  # test_resnet on 8x8 images can overflow bf16 (NaN loss) after 3 steps
            assert torch.isfinite(trainer.callback_metrics["val/loss"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels_last": "yes"}, "channels_last to be a bool or None, but got str 'yes'"),
        ({"compile": 1}, "compile to be a bool, but got int 1"),
        ({"log_train_step": None}, "log_train_step to be a bool, but got NoneType None"),
    ],
)
def test_flags_are_checked(kwargs, match):
    with pytest.raises(TypeError, match=match):
        SimpleCNN(**kwargs)


def test_lbfgs_keeps_contiguous_weights(fast_trainer):
    model = SimpleCNN(channels=(4, 8), hidden=(), optimizer="lbfgs")
    _fit(model, fast_trainer)
    assert not model.uses_channels_last()
    with pytest.raises(ValueError, match="channels_last to be False or None with optimizer='lbfgs'"):
        SimpleCNN(optimizer="lbfgs", channels_last=True)
