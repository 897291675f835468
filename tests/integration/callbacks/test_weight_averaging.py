"""EMA and SWA weight averaging with SnapshotBest, EarlyStopping, TTA, ensembles, resume, DDP and the command line."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.multiprocessing as mp
from lightning.pytorch.callbacks import ModelCheckpoint, StochasticWeightAveraging

from lightning_cnn import (
    DigitsDataModule,
    EarlyStopping,
    EMAWeightAveraging,
    EnsembleEvaluation,
    SimpleCNN,
    SnapshotBest,
    TestTimeAugmentation,
)
from lightning_cnn.cli import CNNCli
from tests.helpers.ddp import free_port, join_as_torchrun_rank

Weights = dict[str, torch.Tensor]
QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def copy(module: torch.nn.Module) -> Weights:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Recording(SimpleCNN):
    """Keeps the weights every validation ran with, and the weights after every optimizer step."""

    def __init__(self, channels=(4,), hidden=(), **kwargs) -> None:
        super().__init__(channels=channels, hidden=hidden, **kwargs)
        self.val_weights: dict[int, Weights] = {}
        self.step_weights: list[Weights] = []

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0 and not self.trainer.sanity_checking:
            self.val_weights[self.current_epoch] = copy(self)
        return super().validation_step(batch, batch_idx)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.step_weights.append(copy(self))  # the module's hook runs before the callbacks'


def trainer(tmp_path: Path, callbacks: list, max_epochs: int = 3, **kwargs) -> pl.Trainer:
    options = {"max_epochs": max_epochs, "limit_train_batches": 4, "limit_val_batches": 2, "limit_test_batches": 2}
    options |= {"enable_checkpointing": False, "default_root_dir": tmp_path, "num_sanity_val_steps": 0}
    return pl.Trainer(callbacks=callbacks, **(QUIET | options | kwargs))


def test_ema_of_a_classifier_is_the_moving_average_of_its_steps(tmp_path):
    """Recomputed from the weights after each step: floats averaged with the decay, integer buffers copied."""
    model, ema = Recording(), EMAWeightAveraging(decay=0.7)
    trainer(tmp_path, [ema], max_epochs=2).fit(model, DigitsDataModule(batch_size=32))
    steps = model.step_weights
    assert len(steps) == 8
    expected = {k: v.clone() for k, v in steps[0].items()}
    for weights in steps[1:]:
        for key, value in weights.items():
            expected[key] = 0.7 * expected[key] + 0.3 * value if value.is_floating_point() else value.clone()
    final = copy(model)
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert int(final["net.0.norm0.num_batches_tracked"]) == 8 if "net.0.norm0.num_batches_tracked" in final else True
    assert model.input_contract.describe()["class_names"][:2] == ["0", "1"]  # the contract survives the averaging
    # validation ran on the average of its epoch: not the training weights of that moment
    assert not same(model.val_weights[0], steps[3])


@pytest.mark.parametrize("order", ["ema_first", "ema_last"])
def test_best_means_the_best_averaged_weights_for_the_snapshot_the_restore_test_and_tta(tmp_path, order):
    model, dm = Recording(), DigitsDataModule(batch_size=32)
    ema = EMAWeightAveraging(decay=0.5)
    snap = SnapshotBest(monitor="val/acc", mode="max", dirpath=str(tmp_path / "snap"))
    stop = EarlyStopping(monitor="val/acc", mode="max", patience=10)
    tta = TestTimeAugmentation(views=["identity"])
    callbacks = [ema, snap, stop, tta] if order == "ema_first" else [snap, stop, tta, ema]
    fit = trainer(tmp_path, callbacks, max_epochs=4)
    fit.fit(model, dm)
    best = snap.best_epoch
    assert best == stop.best_epoch >= 0
    scored = model.val_weights[best]  # the averaged weights validation scored in the best epoch
    assert same(copy(model), scored)  # restored
    saved = torch.load(snap.best_model_path, weights_only=True)
    assert same(saved["state_dict"], scored)  # best.ckpt holds the averaged weights; the training ones beside
    assert "current_model_state" in saved and not same(saved["current_model_state"], scored)
    # test right after fit, test of best.ckpt, the TTA view of the same weights and a one-member ensemble agree
    after_fit = fit.test(model, dm, verbose=False)[0]
    assert after_fit["test/tta_acc"] == pytest.approx(after_fit["test/acc"])
    from_file = trainer(tmp_path, [EMAWeightAveraging()]).test(Recording(), dm, ckpt_path=snap.best_model_path)[0]
    assert from_file["test/acc"] == pytest.approx(after_fit["test/acc"])
    ensemble = EnsembleEvaluation(checkpoints=[snap.best_model_path], include_module=False)
    member = trainer(tmp_path, [ensemble]).test(Recording(), dm, verbose=False)[0]
    assert member["test/ensemble_acc"] == pytest.approx(after_fit["test/acc"])


def test_ema_resumes_from_a_mid_epoch_checkpoint_to_the_uninterrupted_weights(tmp_path):
    def run(ckpt_path: Path | None = None, callbacks: tuple = ()) -> tuple[Weights, Weights]:
        pl.seed_everything(0, verbose=False)
        model, ema = SimpleCNN(channels=(4,), hidden=(), dropout=0.2), EMAWeightAveraging(decay=0.9)
        dm = DigitsDataModule(batch_size=64, mixup_alpha=0.4)
        pl.Trainer(
            max_epochs=2, limit_val_batches=2, deterministic=True, default_root_dir=tmp_path,
            callbacks=[ema, *callbacks], enable_checkpointing=bool(callbacks), **QUIET,
        ).fit(model, dm, ckpt_path=ckpt_path)  # fmt: skip
        return copy(model), {k: v.clone() for k, v in ema_state(ema).items()}

    def ema_state(ema):
        return ema._average_model.state_dict() if ema._average_model is not None else {}

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1, filename="{step}")
    full, _ = run(callbacks=(every,))
    resumed, _ = run(tmp_path / "ckpt" / "step=30.ckpt")  # 20 batches an epoch: the middle of epoch 1
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0, msg=key)


def test_swa_with_batchnorm_scores_the_average_last_and_a_restore_keeps_the_best_scored(tmp_path):
    """Lightning's SWA: validation scores the training weights in the SWA epochs and the average (its BatchNorm
    statistics recomputed) in one extra epoch; SnapshotBest picks among all of them and restores the one it picked."""
    model, dm = Recording(), DigitsDataModule(batch_size=32)
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2)
    snap = SnapshotBest(monitor="val/loss", dirpath=str(tmp_path / "snap"))
    fit = trainer(tmp_path, [swa, snap], max_epochs=3)
    fit.fit(model, dm)
    assert sorted(model.val_weights) == [0, 1, 2, 3]  # epoch 3: the averaged weights, once BatchNorm is updated
    assert same(copy(model), model.val_weights[snap.best_epoch])
    assert same(torch.load(snap.best_model_path, weights_only=True)["state_dict"], model.val_weights[snap.best_epoch])
    averaged = model.val_weights[3]
    params = dict(model.named_parameters())
    # swa_epoch_start=2 is Lightning's 1-based count: the weights at the start of epochs 1 and 2 (0-based) are
    # averaged (the ends of epochs 0 and 1, 4 steps each); epoch 3 is the extra pass that updates BatchNorm.
    swa_mean = {k: (model.step_weights[3][k] + model.step_weights[7][k]) / 2 for k in params}
    for key in params:
        torch.testing.assert_close(averaged[key], swa_mean[key], rtol=1e-5, atol=1e-6, msg=key)


def test_the_command_line_short_name_means_ours_and_an_ema_run_writes_averaged_checkpoints(in_tmp):
    cli = CNNCli(
        args=[
            "fit", "--trainer.callbacks+=EMAWeightAveraging", "--trainer.callbacks.decay=0.9",
            "--model.channels", "[4]", "--model.hidden", "[]", "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        ]
    )  # fmt: skip
    ema = [c for c in cli.trainer.callbacks if isinstance(c, EMAWeightAveraging)]
    assert len(ema) == 1 and ema[0].decay == 0.9
    last = torch.load(next(Path("runs").rglob("last.ckpt")), weights_only=True)
    assert "current_model_state" in last and same(last["state_dict"], copy(cli.model))


def _ddp_worker(rank: int, out: str, port: int) -> None:
    join_as_torchrun_rank(rank, port)
    pl.seed_everything(0, verbose=False)
    model, dm = Recording(), DigitsDataModule(batch_size=32, mixup_alpha=0.4, val_fraction=0.14, test_fraction=0.12)
    seen: list[torch.Tensor] = []
    record = pl.callbacks.LambdaCallback(
        on_train_batch_start=lambda tr, module, batch, i: seen.append(batch[1].clone())
    )
    snap = SnapshotBest(dirpath=str(Path(out) / "snap"))
    callbacks = [EMAWeightAveraging(decay=0.8), snap, record]
    trainer(out, callbacks, max_epochs=2, devices=2, strategy="ddp").fit(model, dm)
    result = {"weights": copy(model), "best": snap.best_model_path, "epoch": snap.best_epoch, "first": seen[0]}
    result["val"] = {e: w for e, w in model.val_weights.items()}
    torch.save(result, Path(out) / f"rank{rank}.pt")


@pytest.mark.ddp
def test_ema_with_mixup_and_snapshot_best_under_ddp(tmp_path):
    mp.spawn(_ddp_worker, args=(str(tmp_path), free_port()), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert same(r0["weights"], r1["weights"])  # the ranks' averages agree
    assert r0["epoch"] == r1["epoch"] and r0["best"] == r1["best"]
    assert same(r0["weights"], r0["val"][r0["epoch"]])  # the averaged weights of the best epoch, restored
    assert same(torch.load(r0["best"], weights_only=True)["state_dict"], r0["weights"])
    assert not torch.equal(r0["first"], r1["first"])  # each rank mixes its own batches with its own draws


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("name", ["ema_mixup.yaml", "swa_cutmix.yaml"])
def test_the_recipe_examples_run_from_the_command_line(in_tmp, name):
    short = ["--trainer.max_epochs", "3", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2"]
    if name == "swa_cutmix.yaml":
        short += ["--trainer.callbacks.swa_epoch_start", "2"]
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    cli = CNNCli(args=["fit", "-c", str(EXAMPLES / name), "--test_after_fit", "true", *short, *quiet])
    assert cli.test_results and "test/acc" in cli.test_results[0]
    mixing = cli.datamodule.mixing
    if name == "ema_mixup.yaml":
        assert mixing.mixup_alpha == 0.2 and any(isinstance(c, EMAWeightAveraging) for c in cli.trainer.callbacks)
        last = torch.load(next(Path("runs").rglob("last.ckpt")), weights_only=True)
        assert "current_model_state" in last  # the checkpoints hold the averaged weights
    else:
        assert mixing.cutmix_alpha == 1.0 and cli.datamodule.image_size == 16
        swa = next(c for c in cli.trainer.callbacks if isinstance(c, StochasticWeightAveraging))
        assert int(swa.n_averaged) == 2 and cli.trainer.current_epoch == 4  # 3 epochs and the BatchNorm pass
