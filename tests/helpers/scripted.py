"""A plain LightningModule (not one of ours) whose validation metric is scripted, for callback tests."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Scripted(pl.LightningModule):
    """Logs ``value(epoch)`` as ``key`` after each validation; the weights move every training step.

    ``val_weights[epoch]`` holds the weights that validation of that epoch ran with.
    """

    def __init__(self, values: list[float] | None = None, key: str = "val/loss", batch_size: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(4, 3)
        self.values = values or []
        self.key = key
        self.batch_size = batch_size
        self.val_weights: dict[int, dict[str, torch.Tensor]] = {}

    def value(self, epoch: int) -> float:
        return float(self.values[epoch])

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sin().sum()

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0 and not self.trainer.sanity_checking:
            self.val_weights[self.current_epoch] = {k: v.detach().clone() for k, v in self.state_dict().items()}

    def on_validation_epoch_end(self):
        self.log(self.key, self.value(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def train_dataloader(self):
        data = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
        return DataLoader(TensorDataset(data), batch_size=self.batch_size)

    def val_dataloader(self):
        return self.train_dataloader()
