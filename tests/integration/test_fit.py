"""Real training on scikit-learn's digits."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

from lightning_cnn import ClassifierModule, DigitsDataModule, SimpleCNN


class TinyNet(ClassifierModule):
    """A user's own network in a few lines: the base supplies steps, loss, optimizer and metrics."""

    def __init__(self, num_classes: int = 10, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_classes))


def test_subclassed_base_trains_to_090_on_digits(fast_trainer):
    pl.seed_everything(0)
    model, dm = TinyNet(lr=3e-3), DigitsDataModule()
    trainer = pl.Trainer(max_epochs=10, **fast_trainer)
    trainer.fit(model, dm)
    fit_keys = set(trainer.logged_metrics)
    result = trainer.test(model, dm, verbose=False)[0]
    print(f"TinyNet test accuracy on digits: {result['test/acc']:.4f}")
    assert result["test/acc"] >= 0.90
    for key in ("test/loss", "test/f1", "test/nll", "test/ece"):
        assert key in result
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/nll", "val/ece", "val/f1"} <= fit_keys


def test_logged_metrics_agree_with_a_hand_computation(fast_trainer):
    pl.seed_everything(1)
    model, dm = SimpleCNN(channels=(8, 16), hidden=()), DigitsDataModule()
    trainer = pl.Trainer(max_epochs=2, **fast_trainer)
    trainer.fit(model, dm)
    result = trainer.test(model, dm, verbose=False)[0]
    model.eval()
    xs, ys = [], []
    for x, y in dm.test_dataloader():
        xs.append(x)  # raw: the model normalizes its input itself
        ys.append(y)
    x, y = torch.cat(xs), torch.cat(ys)
    with torch.no_grad():
        logits = model(x)
    acc = (logits.argmax(-1) == y).float().mean().item()
    nll = nn.functional.cross_entropy(logits, y).item()
    assert abs(result["test/acc"] - acc) < 1e-6
    assert abs(result["test/nll"] - nll) < 1e-4


def test_predict_returns_probabilities(fast_trainer):
    model, dm = SimpleCNN(channels=(8,), hidden=()), DigitsDataModule(batch_size=100)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, **fast_trainer)
    trainer.fit(model, dm)
    batches = trainer.predict(model, dm)
    probs = torch.cat(batches)
    assert probs.shape == (len(dm.split["test"]), 10)
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(probs)))


def test_normalization_uses_training_split_only():
    dm = DigitsDataModule(split_seed=5)
    dm.setup("fit")
    train = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    torch.testing.assert_close(torch.tensor(dm.mean), train.mean(dim=(0, 2, 3)).double().float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(dm.std), train.std(dim=(0, 2, 3), correction=0), atol=1e-5, rtol=0)
    batch = dm.normalize_images(train)
    assert abs(batch.mean().item()) < 1e-5 and abs(batch.std().item() - 1) < 1e-3


def test_device_resident_mode_trains_from_tensors_on_the_device(fast_trainer):
    from lightning_cnn import DeviceResidentLoader

    pl.seed_everything(0)
    dm = DigitsDataModule(device_resident=True, batch_size=128)
    model = SimpleCNN(channels=(8, 16), lr=3e-3)
    trainer = pl.Trainer(max_epochs=3, **fast_trainer)
    trainer.fit(model, dm)
    assert isinstance(trainer.train_dataloader, DeviceResidentLoader)
    assert trainer.global_step == 3 * -(-len(dm.split["train"]) // 128)
    assert trainer.callback_metrics["val/acc"] > 0.8
