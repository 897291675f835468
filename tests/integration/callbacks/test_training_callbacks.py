"""EarlyStopping, SnapshotBest and SnapshotEnsemble in real Trainers."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch import nn

from lightning_cnn import DigitsDataModule, EarlyStopping, SimpleCNN, SnapshotBest, SnapshotEnsemble
from tests.helpers.scripted import Scripted

Weights = dict[str, torch.Tensor]


def trainer(tmp_path: Path, max_epochs: int, callbacks: list, **kwargs) -> pl.Trainer:
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": max_epochs,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": tmp_path,
        "num_sanity_val_steps": 0,
        "callbacks": list(callbacks),
    }
    return pl.Trainer(**(options | kwargs))


def same(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def current(module: nn.Module) -> Weights:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# values, options, last epoch run, epoch stopped at (0: never), best epoch
CASES = {
    "patience": ([5, 4, 3, 3.5, 3.2, 3.1, 3.0, 2.0], {"patience": 3}, 5, 5, 2),
    "patience_1": ([5, 4, 3, 3.5, 3.2, 3.1, 3.0, 2.0], {"patience": 1}, 3, 3, 2),
    "min_delta": ([5, 4, 3.95, 3.93, 3.91, 1.0], {"patience": 3, "min_delta": 0.1}, 4, 4, 1),
    "min_delta_0": ([5, 4, 3.95, 3.93, 3.91, 1.0, 2, 2, 2], {"patience": 3}, 8, 8, 5),
    "mode_max": (
        [0.1, 0.5, 0.4, 0.6, 0.55, 0.58, 0.59, 0.9],
        {"patience": 3, "mode": "max", "monitor": "val/acc"},
        6,
        6,
        3,
    ),
    "start_from_epoch": ([1.0, 5, 4, 3.5, 3.6, 3.7, 3.8, 3.0], {"patience": 3, "start_from_epoch": 1}, 6, 6, 3),
    "start_from_epoch_0": ([1.0, 5, 4, 3.5, 3.6, 3.7, 3.8, 3.0], {"patience": 3}, 3, 3, 0),
    "never_stops": ([5, 3, 4, 2.5, 2.8, 2.9], {"patience": 3}, 5, 0, 3),
    "after_validation": ([5, 4, 3, 3.5, 3.2, 3.1, 3.0], {"patience": 3, "check_on_train_epoch_end": False}, 5, 5, 2),
    # The value that reaches the threshold is the best one: it is restored, not the best before it.
    "stopping_threshold": ([1.0, 0.8, 0.05, 0.01], {"patience": 3, "stopping_threshold": 0.1}, 2, 2, 2),
    "stopping_threshold_max": (
        [0.1, 0.5, 0.95, 0.99],
        {"patience": 3, "stopping_threshold": 0.9, "mode": "max", "monitor": "val/acc"},
        2,
        2,
        2,
    ),
    "divergence_threshold": ([1.0, 0.8, 9.0, 0.5], {"patience": 3, "divergence_threshold": 5.0}, 2, 2, 1),
}


@pytest.mark.parametrize(("values", "options", "last", "stopped", "best"), list(CASES.values()), ids=list(CASES))
def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path, values, options, last, stopped, best):
    model = Scripted(values, key=options.get("monitor", "val/loss"))
    stop = EarlyStopping(**options)
    snap = SnapshotBest(monitor=stop.monitor, mode=stop.mode, dirpath=str(tmp_path))
    trainer(tmp_path, len(values), [snap, stop]).fit(model)  # both restore; the last one listed wins
    assert max(model.val_weights) == last
    assert stop.stopped_epoch == stopped and trainer_stopped(stop) == bool(stopped)
    assert stop.best_epoch == best
    assert stop.best_score.item() == pytest.approx(values[best])
    restored = current(model)
    assert same(restored, model.val_weights[best])
    if best != last:
        assert not same(restored, model.val_weights[last])
    # SnapshotBest (min_delta 0, from epoch 0) sees every epoch that ran.
    run = values[: last + 1]
    snap_best = (max if stop.mode == "max" else min)(
        range(len(run)), key=lambda e: (run[e], -e if stop.mode == "max" else e)
    )
    assert snap.best_epoch == snap_best
    assert snap.best_weights is not None and same(snap.best_weights, model.val_weights[snap_best])


def test_with_both_restoring_the_last_callback_listed_wins(tmp_path):
    values = [5, 4, 3.95, 3.93, 3.91, 1.0]  # min_delta=0.1: EarlyStopping's best is epoch 1, SnapshotBest's 4
    for order in ("stop_last", "snap_last"):
        model = Scripted(values)
        stop, snap = EarlyStopping(patience=3, min_delta=0.1), SnapshotBest(dirpath=str(tmp_path / order))
        trainer(tmp_path, len(values), [snap, stop] if order == "stop_last" else [stop, snap]).fit(model)
        assert (stop.best_epoch, snap.best_epoch) == (1, 4)
        assert same(current(model), model.val_weights[1 if order == "stop_last" else 4])


def trainer_stopped(stop: EarlyStopping) -> bool:
    return stop.stopping_reason.value != 0


def test_restores_when_the_monitored_value_never_improves_after_epoch_0(tmp_path):
    model = Scripted([1.0, 2.0, 3.0, 4.0])
    stop = EarlyStopping(patience=2)
    trainer(tmp_path, 4, [stop]).fit(model)
    assert stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert same(current(model), model.val_weights[0])


def test_restore_best_weights_false_keeps_the_last_weights(tmp_path):
    model = Scripted([5, 3, 4, 4, 4])
    stop = EarlyStopping(patience=2, restore_best_weights=False)
    trainer(tmp_path, 5, [stop]).fit(model)
    assert stop.best_epoch == 1 and stop.best_weights is None
    assert not same(current(model), model.val_weights[1])


def test_missing_monitor_lists_the_logged_keys(tmp_path):
    with pytest.raises(RuntimeError, match=r"val/los.*`val/loss`"):
        trainer(tmp_path, 2, [EarlyStopping(monitor="val/los")]).fit(Scripted([1, 2]))
    with pytest.raises(
        RuntimeError, match=r"SnapshotBest monitors 'val/los', but it was not logged\. Logged keys: 'val/loss'"
    ):
        trainer(tmp_path, 2, [SnapshotBest(monitor="val/los", dirpath=str(tmp_path))]).fit(Scripted([1, 2]))


class Recorder(Logger):
    def __init__(self):
        super().__init__()
        self.metrics: list[dict] = []

    name = "recorder"
    version = 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.metrics.append(dict(metrics))


def test_best_epoch_and_score_are_logged(tmp_path):
    logger = Recorder()
    trainer(tmp_path, 4, [EarlyStopping(), SnapshotBest(dirpath=str(tmp_path))], logger=logger).fit(
        Scripted([3, 2, 2.5, 1])
    )
    logged = [m for m in logger.metrics if "early_stopping/best_epoch" in m]
    assert [(m["early_stopping/best_epoch"], m["early_stopping/best_score"]) for m in logged] == [
        (0, 3.0),
        (1, 2.0),
        (3, 1.0),
    ]
    assert [m["snapshot_best/best_epoch"] for m in logger.metrics if "snapshot_best/best_epoch" in m] == [0, 1, 3]


def test_snapshot_best_writes_a_full_checkpoint_and_restores_it(tmp_path):
    model = Scripted([5, 2, 3, 4, 1.5, 6])
    snap = SnapshotBest(dirpath=str(tmp_path / "snap"))
    trainer(tmp_path, 6, [snap]).fit(model)
    assert snap.best_epoch == 4 and snap.best_score.item() == 1.5
    ckpt = torch.load(snap.best_model_path, weights_only=True)
    assert Path(snap.best_model_path).name == "best.ckpt"
    assert ckpt["epoch"] == 4 and "optimizer_states" in ckpt and "pytorch-lightning_version" in ckpt
    assert same(ckpt["state_dict"], model.val_weights[4])
    assert same(current(model), model.val_weights[4])
    assert not list((tmp_path / "snap").glob(".*tmp"))  # the temporary file was renamed


def test_snapshot_best_on_disk_keeps_no_copy_in_memory(tmp_path):
    model = Scripted([5, 2, 3])
    snap = SnapshotBest(dirpath=str(tmp_path), storage="disk")
    trainer(tmp_path, 3, [snap]).fit(model)
    assert snap._best_weights is None
    assert same(current(model), model.val_weights[1])


def test_a_crash_while_writing_leaves_the_previous_best_intact(tmp_path, monkeypatch):
    model = Scripted([5, 2, 1])
    snap = SnapshotBest(dirpath=str(tmp_path))
    fit = trainer(tmp_path, 3, [snap])
    save = fit.save_checkpoint
    calls = []

    def crash_on_third(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError("disk full")
        save(path, *args, **kwargs)

    monkeypatch.setattr(fit, "save_checkpoint", crash_on_third)
    with pytest.raises(OSError, match="disk full"):
        fit.fit(model)
    assert torch.load(tmp_path / "best.ckpt", weights_only=True)["epoch"] == 1


def test_with_ema_the_best_averaged_weights_win_whatever_the_order(tmp_path):
    """Validation scores the EMA weights; both callbacks restore the EMA weights of the best epoch."""
    for order in ("ema_first", "ema_last"):
        model = Scripted([5, 2, 3, 4])
        ema = EMAWeightAveraging(decay=0.5)
        stop, snap = EarlyStopping(patience=5), SnapshotBest(dirpath=str(tmp_path / order))
        callbacks = [ema, stop, snap] if order == "ema_first" else [stop, snap, ema]
        trainer(tmp_path, 4, callbacks).fit(model)
        assert stop.best_epoch == snap.best_epoch == 1
        assert same(current(model), model.val_weights[1]), order  # the averaged weights validation ran with
        assert same(torch.load(snap.best_model_path, weights_only=True)["state_dict"], model.val_weights[1])


def test_resume_decides_as_an_uninterrupted_run(tmp_path):
    values = [5, 4, 3, 3.5, 2.5, 3.2, 3.1, 3.0, 1.0]

    def callbacks(name):
        return [EarlyStopping(patience=3), SnapshotBest(dirpath=str(tmp_path / name))]

    whole = Scripted(values)
    whole_cbs = callbacks("whole")
    trainer(tmp_path, len(values), whole_cbs).fit(whole)

    part = Scripted(values)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer(tmp_path, 3, [*callbacks("part"), ckpt], enable_checkpointing=True).fit(part)
    resumed = Scripted(values)
    resumed_cbs = callbacks("part")
    trainer(tmp_path, len(values), [*resumed_cbs, ckpt], enable_checkpointing=True).fit(
        resumed, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    for a, b in zip(whole_cbs, resumed_cbs, strict=True):
        assert a.best_epoch == b.best_epoch == 4
        assert a.best_score == b.best_score
    assert whole_cbs[0].stopped_epoch == resumed_cbs[0].stopped_epoch == 7
    assert same(current(whole), current(resumed))
    assert same(current(resumed), whole.val_weights[4])


def test_snapshot_ensemble_resumes_as_an_uninterrupted_run(tmp_path):
    values = [1.0] * 6  # 2 steps per epoch: 12 steps, 3 cycles of 4

    whole, whole_ens = Scripted(values), SnapshotEnsemble(cycles=3)
    trainer(tmp_path, 6, [whole_ens]).fit(whole)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    stop_after_epoch_2 = pl.callbacks.LambdaCallback(
        on_train_epoch_end=lambda trainer, module: setattr(trainer, "should_stop", trainer.current_epoch == 2)
    )  # an interruption: the planned length (and so the schedule) stays 6 epochs
    part_ens = SnapshotEnsemble(cycles=3)
    trainer(tmp_path, 6, [part_ens, stop_after_epoch_2, ckpt], enable_checkpointing=True).fit(Scripted(values))
    assert len(part_ens.snapshots) == 1  # after 6 of 12 steps
    resumed, resumed_ens = Scripted(values), SnapshotEnsemble(cycles=3)
    trainer(tmp_path, 6, [resumed_ens, ckpt], enable_checkpointing=True).fit(
        resumed, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    assert len(whole_ens.snapshots) == len(resumed_ens.snapshots) == 3
    for a, b in zip(whole_ens.snapshots, resumed_ens.snapshots, strict=True):
        assert same(a, b)
    assert same(whole_ens.snapshots[-1], current(whole)) and same(current(whole), current(resumed))


def test_snapshot_best_on_digits_tests_the_best_snapshot(tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=128)
    model = SimpleCNN(channels=(8, 16), hidden=(32,), lr=1e-2)
    snap = SnapshotBest(monitor="val/acc", mode="max", dirpath=str(tmp_path))
    fit = trainer(tmp_path, 3, [snap])
    fit.fit(model, datamodule=dm)
    in_memory = fit.test(model, datamodule=dm, verbose=False)[0]
    from_file = fit.test(model, datamodule=dm, ckpt_path=snap.best_model_path, verbose=False)[0]
    print(f"SnapshotBest on digits: best epoch {snap.best_epoch}, val/acc {snap.best_score:.4f}, test {in_memory}")
    assert in_memory["test/acc"] == pytest.approx(from_file["test/acc"], abs=1e-7)
    assert same(current(model), torch.load(snap.best_model_path, weights_only=True)["state_dict"])
    assert snap.best_score.item() > 0.5


def predictions(model: nn.Module, x: torch.Tensor, weights: Weights) -> torch.Tensor:
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        return model(x).softmax(-1)


@pytest.mark.slow
def test_snapshot_ensemble_on_digits_beats_its_mean_member(tmp_path):
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64)
    model = SimpleCNN(channels=(8, 16), hidden=(32,), optimizer="sgd", lr=0.1, optimizer_options={"momentum": 0.9})
    ensemble = SnapshotEnsemble(cycles=5, dirpath=str(tmp_path / "snaps"))
    lrs: list[float] = []

    class LR(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    fit = trainer(tmp_path, 5, [ensemble, LR()], limit_val_batches=0)
    fit.fit(model, datamodule=dm)
    snapshots = ensemble.snapshots
    assert len(snapshots) == 5 and len(ensemble.snapshot_paths) == 5
    assert [Path(p).name for p in ensemble.snapshot_paths] == [f"snapshot_{i}.ckpt" for i in range(5)]
    for i, path in enumerate(ensemble.snapshot_paths):
        assert same(torch.load(path, weights_only=True)["state_dict"], snapshots[i])
    assert all(not same(snapshots[i], snapshots[j]) for i in range(5) for j in range(i))
    steps = len(lrs)
    assert lrs[0] == pytest.approx(0.1) and min(lrs) < 1e-3
    restarts = [s for s in range(1, steps) if lrs[s] > lrs[s - 1]]
    assert restarts == [round(k * steps / 5) for k in range(1, 5)]

    dm.setup("test")
    xs, ys = zip(*[(x, y) for x, y in dm.test_dataloader()], strict=True)  # raw: the model normalizes itself
    x, y = torch.cat(xs), torch.cat(ys)
    probs = torch.stack([predictions(model, x, w) for w in snapshots])
    member_acc = (probs.argmax(-1) == y).float().mean(-1)
    member_nll = torch.stack([F.nll_loss(p.clamp_min(1e-12).log(), y) for p in probs])
    mean = probs.mean(0)
    ensemble_acc = (mean.argmax(-1) == y).float().mean().item()
    ensemble_nll = F.nll_loss(mean.clamp_min(1e-12).log(), y).item()
    print(
        f"snapshot members acc {[round(a, 4) for a in member_acc.tolist()]} mean {member_acc.mean():.4f};"
        f" nll {[round(n, 4) for n in member_nll.tolist()]} mean {member_nll.mean():.4f};"
        f" ensemble acc {ensemble_acc:.4f} nll {ensemble_nll:.4f}"
    )
    assert ensemble_acc >= member_acc.mean().item()
    assert ensemble_nll < member_nll.mean().item()
    assert ensemble_acc > 0.9


# ---------------------------------------------------------------- command line
QUICK = ["--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "early_stopping_snapshot.yaml"


def test_cli_early_stopping_by_class_path(in_tmp):
    from lightning_cnn.cli import CNNCli

    args = ["fit", "--trainer.callbacks+=lightning_cnn.callbacks.EarlyStopping", "--trainer.callbacks.patience=5"]
    cli = CNNCli(args=[*args, "--trainer.max_epochs", "2", *QUICK, *QUIET])
    (stop,) = [c for c in cli.trainer.callbacks if isinstance(c, EarlyStopping)]
    assert type(stop) is EarlyStopping and stop.patience == 5 and stop.restore_best_weights
    assert stop.best_epoch in (0, 1) and cli.trainer.current_epoch == 2


def test_cli_early_stopping_short_name_is_ours(in_tmp):
    from lightning_cnn.cli import CNNCli

    args = ["fit", "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.patience=5", "--trainer.max_epochs", "2"]
    cli = CNNCli(args=[*args, *QUICK, *QUIET])
    (stop,) = [c for c in cli.trainer.callbacks if isinstance(c, pl.callbacks.EarlyStopping)]
    assert type(stop) is EarlyStopping and stop.patience == 5 and stop.restore_best_weights


def test_cli_snapshot_best_short_name_writes_a_checkpoint_a_new_process_tests(in_tmp):
    import subprocess
    import sys

    from lightning_cnn.cli import CNNCli

    args = ["fit", "--trainer.callbacks+=SnapshotBest", "--trainer.callbacks.monitor=val/acc"]
    cli = CNNCli(args=[*args, "--trainer.callbacks.mode=max", "--trainer.max_epochs", "2", *QUICK, *QUIET])
    (snap,) = [c for c in cli.trainer.callbacks if isinstance(c, SnapshotBest)]
    assert type(snap) is SnapshotBest and snap.mode == "max"
    best = Path(snap.best_model_path)
    assert best.resolve() == in_tmp / "runs" / "lightning_cnn" / "version_0" / "snapshots" / "best.ckpt"
    assert torch.load(best, weights_only=True)["epoch"] == snap.best_epoch
    here = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]["test/acc"]
    code = (
        "import sys; from lightning_cnn.cli import CNNCli;"
        "cli = CNNCli(args=['test', '--ckpt_path', sys.argv[1], *sys.argv[2:]]);"
        "print('TEST_ACC', cli.trainer.callback_metrics['test/acc'].item())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(best), *QUIET], capture_output=True, text=True, check=True)
    there = float(out.stdout.split("TEST_ACC")[1].split()[0])
    assert there == pytest.approx(here, abs=1e-6)


def test_example_config_runs(in_tmp):
    from lightning_cnn.cli import CNNCli

    cli = CNNCli(args=["fit", "-c", str(EXAMPLE), "--trainer.max_epochs", "2", *QUICK, *QUIET])
    kinds = [type(c) for c in cli.trainer.callbacks]
    assert EarlyStopping in kinds and SnapshotBest in kinds
    (snap,) = [c for c in cli.trainer.callbacks if isinstance(c, SnapshotBest)]
    assert Path(snap.best_model_path).is_file() and cli.trainer.current_epoch == 2


def test_snapshot_best_resumed_from_another_folder_restores_and_warns_when_its_file_is_gone(tmp_path, monkeypatch):
    values = [5, 1, 3, 4]
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    last = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    part = Scripted(values)  # the default folder of SnapshotBest is relative: run/ under the working directory
    trainer(tmp_path, 2, [SnapshotBest(), last], enable_checkpointing=True, default_root_dir="run").fit(part)
    monkeypatch.chdir(tmp_path / "b")
    resumed, snap = Scripted(values), SnapshotBest()
    trainer(tmp_path, 4, [snap], default_root_dir="run").fit(resumed, ckpt_path=tmp_path / "ck" / "last.ckpt")
    assert snap.best_epoch == 1 and same(current(resumed), part.val_weights[1])

    (tmp_path / "a" / "run" / "snapshots" / "best.ckpt").unlink()
    again, snap = Scripted(values), SnapshotBest()
    gone = r"SnapshotBest: the best checkpoint of the resumed run, .*best.ckpt \(epoch 1"
    with pytest.warns(UserWarning, match=gone):
        trainer(tmp_path, 4, [snap], default_root_dir="run").fit(again, ckpt_path=tmp_path / "ck" / "last.ckpt")
    assert snap.best_epoch == 2 and same(current(again), again.val_weights[2])  # the best of the epochs run here
