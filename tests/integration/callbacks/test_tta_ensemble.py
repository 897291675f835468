"""TTA and ensemble callbacks in real Trainers: digits, checkpoints, a foreign module, the CLI."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torchvision
from torch.utils.data import DataLoader

import lightning_cnn.callbacks.ensemble  # noqa: F401  (registers the short name for the CLI)
from lightning_cnn import DigitsDataModule, SimpleCNN
from lightning_cnn.callbacks.ensemble import EnsembleEvaluation
from lightning_cnn.callbacks.members import expand_checkpoints, load_member
from lightning_cnn.callbacks.tta import TestTimeAugmentation
from lightning_cnn.cli import CNNCli

QUIET = {
    "accelerator": "cpu",
    "devices": 1,
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
}


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[SimpleCNN]:
    """Five small SimpleCNNs, seeds 0-4, three epochs on digits: good but imperfect members."""
    root = tmp_path_factory.mktemp("members")
    trained = []
    for seed in range(5):
        pl.seed_everything(seed)
        model = SimpleCNN(channels=(8, 16), hidden=(), lr=3e-3)
        trainer = pl.Trainer(max_epochs=3, limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=root, **QUIET)
        trainer.fit(model, DigitsDataModule())
        trained.append(model.eval())
    return trained


def _test(model, callbacks, tmp_path, dm=None) -> dict[str, float]:
    trainer = pl.Trainer(callbacks=callbacks, default_root_dir=tmp_path, **QUIET)
    return trainer.test(model, dm or DigitsDataModule(), verbose=False)[0]


def test_ensemble_of_five_beats_the_mean_member_on_digits(members, tmp_path):
    ensemble = EnsembleEvaluation(members=members[1:])  # the tested module is member 0
    result = _test(members[0], [ensemble], tmp_path)
    accs = [result[f"test/member{i}_acc"] for i in range(5)]
    nlls = [result[f"test/member{i}_nll"] for i in range(5)]
    print(
        f"member accuracies {[round(a, 4) for a in accs]} (mean {sum(accs) / 5:.4f}),"
        f" mean-probability ensemble {result['test/ensemble_acc']:.4f},"
        f" majority vote {result['test/ensemble_vote_acc']:.4f};"
        f" NLL members {sum(nlls) / 5:.4f} vs ensemble {result['test/ensemble_nll']:.4f}"
    )
    assert max(accs) < 1.0  # imperfect members, or the claim is empty
    # Member 0 is the module under test: its metrics agree with the module's own.
    assert result["test/member0_acc"] == pytest.approx(result["test/acc"], abs=1e-6)
    assert result["test/member0_nll"] == pytest.approx(result["test/nll"], abs=1e-5)
    assert result["test/member_mean_acc"] == pytest.approx(sum(accs) / 5, abs=1e-6)
    assert result["test/ensemble_acc"] >= result["test/member_mean_acc"]
    assert result["test/ensemble_nll"] < result["test/member_mean_nll"]
    assert result["test/ensemble_vote_acc"] >= result["test/member_mean_acc"]
    assert result["test/ensemble_gain_vs_mean"] == pytest.approx(result["test/ensemble_acc"] - sum(accs) / 5, abs=1e-6)
    assert result["test/ensemble_gain_vs_best"] == pytest.approx(result["test/ensemble_acc"] - max(accs), abs=1e-6)
    assert 0.0 <= result["test/ensemble_ece"] <= 1.0


def test_vectorized_members_with_batchnorm_equal_the_loop(members):
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loop = EnsembleEvaluation(members=members, include_module=False, vectorize=False)
    vmapped = EnsembleEvaluation(members=members, include_module=False, vectorize=True)
    vmapped._prepare(None, None)
    assert vmapped._stacked is not None  # the vectorized path is really taken
    torch.testing.assert_close(vmapped.member_logits(x), loop.member_logits(x), rtol=1e-5, atol=1e-5)


def test_checkpoint_members_from_a_folder_and_a_glob_equal_in_memory_members(members, tmp_path):
    (tmp_path / "snaps").mkdir()
    for i, model in enumerate(members[:3]):  # the two keys of a Lightning checkpoint that members need
        ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
        torch.save(ckpt, tmp_path / "snaps" / f"seed{i}.ckpt")
    assert expand_checkpoints([str(tmp_path / "snaps")]) == expand_checkpoints(str(tmp_path / "snaps" / "seed*.ckpt"))
    loaded = load_member(str(tmp_path / "snaps" / "seed1.ckpt"), fallback=SimpleCNN)
    assert isinstance(loaded, SimpleCNN) and not loaded.training
    torch.testing.assert_close(loaded.state_dict(), members[1].state_dict())
    from_files = _test(members[0], [EnsembleEvaluation(checkpoints=[str(tmp_path / "snaps")])], tmp_path)
    in_memory = _test(members[0], [EnsembleEvaluation(members=members[1:3])], tmp_path)
    # seed0.ckpt is loaded as a member beside the module under test (no ckpt_path: nothing to dedupe).
    assert from_files["test/member1_acc"] == pytest.approx(from_files["test/member0_acc"])
    assert from_files["test/member2_acc"] == pytest.approx(in_memory["test/member1_acc"])
    assert from_files["test/member3_acc"] == pytest.approx(in_memory["test/member2_acc"])
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        expand_checkpoints([str(tmp_path / "nothing.ckpt")])


def test_tta_on_digits_identity_equals_plain_metrics_and_predict_returns_merged(members, tmp_path):
    model = members[0]
    plain = _test(model, [TestTimeAugmentation(views=("identity",))], tmp_path)
    assert plain["test/tta_acc"] == pytest.approx(plain["test/acc"], abs=1e-6)
    assert plain["test/tta_nll"] == pytest.approx(plain["test/nll"], abs=1e-5)
    assert plain["test/tta_ece"] == pytest.approx(plain["test/ece"], abs=1e-5)

    tta = TestTimeAugmentation(views=("identity", "shifts"), merge="gmean")
    trainer = pl.Trainer(callbacks=[tta], default_root_dir=tmp_path, **QUIET)
    shifted = trainer.test(model, DigitsDataModule(), verbose=False)[0]
    print(
        f"digits: plain acc {shifted['test/acc']:.4f}, TTA (identity + 4 shifts, gmean) {shifted['test/tta_acc']:.4f}"
    )
    assert {"test/tta_acc", "test/tta_nll", "test/tta_ece"} <= set(shifted)
    predictions = trainer.predict(model, DigitsDataModule())
    assert predictions is not None
    merged = torch.cat(predictions)  # type: ignore[arg-type]
    torch.testing.assert_close(merged, torch.cat(tta.predictions))
    # By hand: the raw test images through the six views, merged (the model normalizes its input itself).
    dm = DigitsDataModule()
    dm.setup("test")
    x = torch.cat([b[0] for b in dm.test_dataloader()])
    torch.testing.assert_close(merged, tta.merged_log_probs(model, x).exp(), rtol=1e-5, atol=1e-6)


def test_tta_and_ensemble_in_validation_during_fit(tmp_path):
    pl.seed_everything(0)
    model = SimpleCNN(channels=(4, 8), hidden=())
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        callbacks=[TestTimeAugmentation(views=("flips",)), EnsembleEvaluation(stages=("val",))],
        default_root_dir=tmp_path,
        **QUIET,
    )
    trainer.fit(model, DigitsDataModule())
    assert {"val/tta_acc", "val/ensemble_acc", "val/member0_acc"} <= set(trainer.callback_metrics)


class ForeignResNet(pl.LightningModule):
    """Not one of ours: torchvision's resnet18 for 10 classes, batches as dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torchvision.models.resnet18(num_classes=10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self(batch["pixels"])


def _dict_batches() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, 32, 32, generator=g), torch.randint(0, 10, (12,), generator=g)
    return DataLoader([{"pixels": a, "target": b} for a, b in zip(x, y, strict=True)], batch_size=6)


def test_callbacks_serve_a_module_that_is_not_ours(tmp_path):
    torch.manual_seed(0)
    module, other = ForeignResNet().eval(), ForeignResNet().eval()
    unpack = TestTimeAugmentation.batch_to_input

    class DictTTA(TestTimeAugmentation):
        def batch_to_input(self, batch):
            return batch["pixels"], batch["target"]

    tta = DictTTA(views=("identity", "hflip", "rot180"), merge="mean", batched=True, max_batch=8)
    ensemble = EnsembleEvaluation(members=[other], vectorize=True, batch_to_input=lambda b: (b["pixels"], b["target"]))
    trainer = pl.Trainer(callbacks=[tta, ensemble], default_root_dir=tmp_path, **QUIET)
    result = trainer.test(module, dataloaders=_dict_batches(), verbose=False)[0]
    assert TestTimeAugmentation.batch_to_input is unpack
    # By hand, from the module and the other member directly.
    loader = _dict_batches()
    x = torch.cat([b["pixels"] for b in loader])
    y = torch.cat([b["target"] for b in loader])
    with torch.no_grad():
        p = (module(x).softmax(-1) + module(x.flip(-1)).softmax(-1) + module(x.rot90(2, (-2, -1))).softmax(-1)) / 3
        ens = (module(x).softmax(-1) + other(x).softmax(-1)) / 2
    assert result["test/tta_acc"] == pytest.approx((p.argmax(-1) == y).float().mean().item())
    assert result["test/tta_nll"] == pytest.approx(-p.gather(1, y[:, None]).log().mean().item(), rel=1e-4)
    assert result["test/ensemble_acc"] == pytest.approx((ens.argmax(-1) == y).float().mean().item())
    assert result["test/ensemble_nll"] == pytest.approx(-ens.gather(1, y[:, None]).log().mean().item(), rel=1e-4)


def test_cli_tests_an_ensemble_of_checkpoints(in_tmp: Path):
    quick = [
        "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "4",
        "--trainer.limit_val_batches", "2",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--model.channels", "[4, 8]",
    ]  # fmt: skip
    best = []
    for seed in range(3):
        cli = CNNCli(args=["fit", "--seed_everything", str(seed), *quick])
        best.append(cli.trainer.checkpoint_callback.best_model_path)  # type: ignore[union-attr]
    assert len(set(best)) == 3 and all(Path(p).is_file() for p in best)
    cli = CNNCli(
        args=[
            "test",
            "--ckpt_path",
            best[0],
            "--trainer.callbacks+=EnsembleEvaluation",
            f"--trainer.callbacks.checkpoints=[{best[1]}, {best[2]}]",
            "--trainer.enable_progress_bar",
            "false",
            "--model.channels",
            "[4, 8]",
        ]
    )
    results = cli.trainer.callback_metrics
    assert {"test/member0_acc", "test/member1_acc", "test/member2_acc", "test/ensemble_acc"} <= set(results)
    assert "test/member3_acc" not in results
    assert results["test/member0_acc"] == pytest.approx(results["test/acc"].item())


def test_ensemble_with_tta_views_merges_each_member_then_the_members(members):
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (8,))
    ensemble = EnsembleEvaluation(members=members[:2], include_module=False, views=("identity", "shift_left"))
    ensemble._prepare(None, None)
    merged = ensemble.evaluate_batch(None, None, (x, y), 0, "test").exp()  # type: ignore[arg-type]
    shifted = torch.nn.functional.pad(x, (0, 1))[..., 1:]
    with torch.no_grad():
        per_member = [(m(x).softmax(-1) + m(shifted).softmax(-1)) / 2 for m in members[:2]]
    torch.testing.assert_close(merged, (per_member[0] + per_member[1]) / 2)


def _fit_checkpoint(path: Path, dm: DigitsDataModule) -> None:
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=0, default_root_dir=path.parent, **QUIET
    )
    trainer.fit(SimpleCNN(channels=(4,), hidden=()), dm)
    trainer.save_checkpoint(path)


def test_members_of_another_split_or_normalization_are_refused(members, tmp_path):
    _fit_checkpoint(tmp_path / "split1.ckpt", DigitsDataModule(split_seed=1))
    _fit_checkpoint(tmp_path / "same.ckpt", DigitsDataModule())
    _fit_checkpoint(tmp_path / "other_stats.ckpt", DigitsDataModule(mean=[0.5], std=[0.25]))
    with pytest.raises(ValueError, match=r"split1.ckpt was trained on another split \(digest [0-9a-f]+\) than this"):
        _test(members[0], [EnsembleEvaluation(checkpoints=[str(tmp_path / "split1.ckpt")])], tmp_path)
    with pytest.raises(ValueError, match=r"other_stats.ckpt was trained with normalization mean=\[0.5"):
        _test(members[0], [EnsembleEvaluation(checkpoints=[str(tmp_path / "other_stats.ckpt")])], tmp_path)
    result = _test(members[0], [EnsembleEvaluation(checkpoints=[str(tmp_path / "same.ckpt")])], tmp_path)
    assert "test/member1_acc" in result


def test_members_follow_a_true_half_precision_and_must_agree_on_classes(members, tmp_path):
    import copy

    own = [copy.deepcopy(m) for m in members[:3]]  # the trainer casts the module and members in place
    callbacks = [EnsembleEvaluation(members=own[1:])]
    trainer = pl.Trainer(callbacks=callbacks, precision="bf16-true", default_root_dir=tmp_path, **QUIET)
    result = trainer.test(own[0], DigitsDataModule(), verbose=False)[0]
    assert result["test/ensemble_acc"] > 0.5
    assert all(p.dtype == torch.bfloat16 for m in own[1:] for p in m.parameters())
    odd = SimpleCNN(num_classes=7, channels=(4,), hidden=())
    with pytest.raises(ValueError, match=r"Ensemble members give different numbers of classes: \[10, 10, 7\]"):
        _test(members[0], [EnsembleEvaluation(members=[members[1], odd])], tmp_path)


def test_a_member_of_another_split_may_score_a_test_set_of_its_own(tmp_path):
    from sklearn.datasets import load_digits

    from lightning_cnn import ArrayDataModule

    digits = load_digits()
    x, y = digits.images[:, None].astype("float32") / 16, digits.target
    arrays = {"x": x[:1500], "y": y[:1500], "test_x": x[1500:], "test_y": y[1500:]}
    _fit_checkpoint(tmp_path / "split1.ckpt", ArrayDataModule(**arrays, split_seed=1))
    member = [EnsembleEvaluation(checkpoints=[str(tmp_path / "split1.ckpt")], stages=("val", "test"))]
    module = SimpleCNN(channels=(4,), hidden=())
    trainer = pl.Trainer(callbacks=member, default_root_dir=tmp_path, **QUIET)
    result = trainer.test(module, ArrayDataModule(**arrays), verbose=False)[0]  # a test set of its own: no leak
    assert "test/member1_acc" in result
    with pytest.raises(ValueError, match=r"split1.ckpt was trained on another split"):  # the validation set leaks
        trainer.validate(module, ArrayDataModule(**arrays), verbose=False)
