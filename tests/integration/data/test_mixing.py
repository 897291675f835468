"""MixUp and CutMix in the DataModules: training batches only, soft targets, accuracy on hard labels, exact resume."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import ArrayDataModule, DigitsDataModule, SimpleCNN
from lightning_cnn.cli import CNNCli
from lightning_cnn.data.mixing import DRAWN_TOGETHER


class Recording(SimpleCNN):
    """Records the labels of every batch each stage gets, and the training accuracy's inputs."""

    def __init__(self, **kwargs):
        super().__init__(channels=(4,), hidden=(), **kwargs)
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": [], "predict": []}
        self.images: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.seen["train"].append(batch[1].detach().clone())
        self.images.append(batch[0].detach().clone())
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append(batch[1].clone())
        return super().validation_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.seen["test"].append(batch[1].clone())
        return super().test_step(batch, batch_idx)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["predict"].append(batch[1].clone())
        return super().predict_step(batch, batch_idx, dataloader_idx)


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    options = {
        "accelerator": "cpu",
        "max_epochs": 1,
        "limit_train_batches": 3,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "limit_predict_batches": 2,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": tmp_path,
    }
    return pl.Trainer(**(options | kwargs))


@pytest.mark.parametrize("options", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0}, {"device_resident": True}])
def test_only_training_batches_are_mixed_into_soft_targets(tmp_path, options):
    if options.get("device_resident"):
        options = {**options, "mixup_alpha": 0.4, "cutmix_alpha": 1.0}
    model, dm = Recording(), DigitsDataModule(batch_size=32, **options)
    fit = trainer(tmp_path)
    fit.fit(model, dm)
    fit.test(model, dm, verbose=False)
    fit.predict(model, dm)
    for y in model.seen["train"]:
        assert y.dtype == torch.float32 and y.shape == (32, 10)
        torch.testing.assert_close(y.sum(1), torch.ones(32))
        assert bool((y.max(1).values < 1).any())  # some samples are mixed
    for stage in ("val", "test", "predict"):
        assert model.seen[stage] and all(y.dtype == torch.int64 and y.ndim == 1 for y in model.seen[stage])
    assert dm.state_dict()["mixed_batches"] == 3


def test_training_accuracy_counts_the_label_with_the_larger_share(tmp_path):
    """train/acc is the accuracy on the argmax of the soft targets: recomputed here from the batches it saw."""
    model, dm = Recording(), DigitsDataModule(batch_size=64, mixup_alpha=0.4, cutmix_alpha=1.0)
    logits: list[torch.Tensor] = []
    model.register_forward_hook(
        lambda module, args, out: logits.append(out.detach().clone()) if module.training else None
    )
    fit = trainer(tmp_path, limit_val_batches=0)
    fit.fit(model, dm)
    predicted = torch.cat(logits).argmax(1)
    dominant = torch.cat(model.seen["train"]).argmax(1)
    assert float(fit.callback_metrics["train/acc"]) == pytest.approx(float((predicted == dominant).float().mean()))


def test_a_mixed_batch_is_normalized_after_mixing_for_a_module_that_does_not_normalize(tmp_path):
    """A foreign-style module (its own forward) gets normalized batches: mixed raw images, then normalized."""

    class OwnForward(Recording):
        def forward(self, x):
            return self.net(x)

    x = torch.rand(40, 1, 8, 8)
    y = torch.arange(40) % 4
    model = OwnForward(num_classes=4)
    dm = ArrayDataModule(x=x.numpy(), y=y.numpy(), batch_size=16, mixup_alpha=1.0, val_fraction=0.2, test_fraction=0.2)
    trainer(tmp_path, limit_train_batches=1, limit_val_batches=0).fit(model, dm)
    seen = model.images[0]
    assert abs(float(seen.mean())) < 0.5 and float(seen.std()) > 0.5  # normalized: about zero mean, unit std


def test_the_draws_are_in_the_state_and_a_loaded_state_draws_the_same():
    dm = DigitsDataModule(batch_size=8, mixup_alpha=0.4, cutmix_alpha=1.0, mix_prob=0.8)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    for _ in range(3):
        dm.mix_batch(x, [y], rank=0)
    state = dm.state_dict()
    assert state["mixed_batches"] == 3
    expected = dm.mix_batch(x, [y], rank=0)
    again = DigitsDataModule(batch_size=8, mixup_alpha=0.4, cutmix_alpha=1.0, mix_prob=0.8)
    again.load_state_dict(state)
    got = again.mix_batch(x, [y], rank=0)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1][0], expected[1][0])
    other_rank = again.mix_batch(x, [y], rank=1)
    assert not torch.equal(other_rank[0], expected[0])


def test_resume_in_the_middle_of_an_epoch_mixes_as_the_uninterrupted_run(tmp_path):
    def run(ckpt_path: Path | None = None, callbacks: tuple = ()) -> dict[str, torch.Tensor]:
        pl.seed_everything(0, verbose=False)
        model = SimpleCNN(channels=(4,), hidden=())
        dm = DigitsDataModule(batch_size=64, mixup_alpha=0.4, cutmix_alpha=1.0, mix_prob=0.7)
        trainer(
            tmp_path, max_epochs=2, limit_train_batches=None, limit_val_batches=2, deterministic=True,
            callbacks=list(callbacks), enable_checkpointing=bool(callbacks),
        ).fit(model, dm, ckpt_path=ckpt_path)  # fmt: skip
        return model.state_dict()

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1, filename="{step}")
    full = run(callbacks=(every,))
    assert torch.load(tmp_path / "ckpt" / "step=30.ckpt", weights_only=True)["DigitsDataModule"]["mixed_batches"] == 30
    resumed = run(tmp_path / "ckpt" / "step=30.ckpt")  # 20 batches an epoch: in the middle of epoch 1
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0, msg=key)


def test_the_command_line_takes_the_mixing_options(in_tmp):
    cli = CNNCli(
        args=[
            "fit", "--data.mixup_alpha", "0.2", "--data.cutmix_alpha", "1.0", "--data.mix_prob", "0.9",
            "--data.mix_switch_prob", "0.3", "--model.channels", "[4]", "--model.hidden", "[]",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        ]
    )  # fmt: skip
    mixing = cli.datamodule.mixing
    assert (mixing.mixup_alpha, mixing.cutmix_alpha, mixing.prob, mixing.switch_prob) == (0.2, 1.0, 0.9, 0.3)
    assert cli.datamodule.hparams["mixup_alpha"] == 0.2 and cli.datamodule.state_dict()["mixed_batches"] == 2


def test_the_draws_of_32_batches_come_from_one_generator_seeded_by_their_block():
    """Batch n takes row n % 32 of the draws for 32 batches from the generator seeded (seed, rank, n // 32); a batch
    of another size draws its own block (the same seed), so the draws stay a function of the count and the size."""
    dm = DigitsDataModule(mixup_alpha=0.4, cutmix_alpha=1.0)
    dm.shuffle_seed = 5  # the seed of the training order, which the draws share
    dm.prepare_data()
    dm.setup("fit")
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    mixed = [dm.mix_batch(x, [y], rank=1)[1][0] for _ in range(DRAWN_TOGETHER + 1)]
    for n, targets in enumerate(mixed):
        rng = np.random.default_rng([5, 1, n // DRAWN_TOGETHER])
        params = dm.mixing.make_params(DRAWN_TOGETHER * 16, 8, 8, rng).view(DRAWN_TOGETHER, 16, -1)
        torch.testing.assert_close(targets, dm.mixing(x, y, 10, params=params[n % DRAWN_TOGETHER])[1])
    assert not torch.equal(mixed[0], mixed[1]) and not torch.equal(mixed[0], mixed[DRAWN_TOGETHER])
    small = dm.mix_batch(x[:4], [y[:4]], rank=1)[1][0]  # batch 33, of 4: its own block for size 4
    params = dm.mixing.make_params(DRAWN_TOGETHER * 4, 8, 8, np.random.default_rng([5, 1, 1])).view(
        DRAWN_TOGETHER, 4, -1
    )
    torch.testing.assert_close(small, dm.mixing(x[:4], y[:4], 10, params=params[33 % DRAWN_TOGETHER])[1])
