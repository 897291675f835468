"""MNIST, FashionMNIST, CIFAR10, CIFAR100 and SVHN through :mod:`torchvision.datasets`, as a DataModule.

This module has the library's name; with absolute imports (``from torchvision import datasets``) the
library is what is imported here, never this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_cnn._utils.validation import check_choice
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import ArrayDataset

__all__ = ["TORCHVISION_NAMES", "TorchvisionDataModule", "TorchvisionName"]

TorchvisionName = Literal["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN"]
TORCHVISION_NAMES: tuple[str, ...] = get_args(TorchvisionName)
_TORCHVISION: dict[str, tuple[int, int]] = {  # name: (classes, channels)
    "MNIST": (10, 1),
    "FashionMNIST": (10, 1),
    "CIFAR10": (10, 3),
    "CIFAR100": (100, 3),
    "SVHN": (10, 3),
}
if tuple(_TORCHVISION) != TORCHVISION_NAMES:  # one list of names: the Literal above
    raise RuntimeError(
        f"The torchvision table {tuple(_TORCHVISION)} disagrees with TorchvisionName {TORCHVISION_NAMES}."
    )


def _torchvision_folder(name: str, root: Path) -> Path:
    return {
        "MNIST": root / "MNIST" / "raw",
        "FashionMNIST": root / "FashionMNIST" / "raw",
        "CIFAR10": root / "cifar-10-batches-py",
        "CIFAR100": root / "cifar-100-python",
        "SVHN": root,
    }[name]


class TorchvisionDataModule(ClassifierDataModule):
    """MNIST, FashionMNIST, CIFAR10, CIFAR100 or SVHN through :mod:`torchvision.datasets`, by name.

    The official training set splits into train and val; the official test set is the test set, opened
    only in the ``test`` stage. With ``download=False`` the files must already be under ``root``; without
    them the error names the folder looked in.

    Args:
        name: ``"MNIST"``, ``"FashionMNIST"``, ``"CIFAR10"``, ``"CIFAR100"`` or ``"SVHN"``.
        root: folder of the dataset files (torchvision's layout).
        download: download the files into ``root`` when they are missing.
        val_fraction: share of each class of the training set for validation.
        **kwargs: the other arguments every source shares (``batch_size``, ``normalize``, ``augment``,
            ``num_workers``, ...; not ``test_fraction``), passed on to
            :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Example:
        >>> dm = TorchvisionDataModule("CIFAR10", root="data")
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (10, 3, 32)
    """

    fixed_arguments = ("test_fraction",)  # 0: the official test set is the test set

    def __init__(
        self,
        name: TorchvisionName = "MNIST",
        root: str = "data",
        download: bool = False,
        *,
        val_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        # The official test set is the test set: nothing of the training set is held out for one.
        super().__init__(val_fraction=val_fraction, test_fraction=0.0, **kwargs)
        check_choice("name", name, TORCHVISION_NAMES)
        self.save_hyperparameters()
        self.dataset_name = name
        self.root = str(root)
        self.download = download
        self._train: tuple[torch.Tensor, np.ndarray, list[str]] | None = None

    def _open(self, train: bool) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        from torchvision import datasets

        cls = getattr(datasets, self.dataset_name)
        root = Path(self.root).expanduser().resolve()
        kwargs: dict[str, Any] = (
            {"split": "train" if train else "test"} if self.dataset_name == "SVHN" else {"train": train}
        )
        try:
            ds = cls(str(root), download=self.download, **kwargs)
        except RuntimeError as err:
            if self.download:
                raise
            raise FileNotFoundError(
                f"{self.dataset_name} {'training' if train else 'test'} files not found in"
                f" {_torchvision_folder(self.dataset_name, root)}"
                f" (root={self.root!r}): put them there in torchvision's layout, or pass download=True"
                f" (--data.download true) on a machine with network access. ({err})"
            ) from err
        except OSError as err:
            raise OSError(f"Could not download {self.dataset_name} into {root}: {err}") from err
        data = ds.data
        x = torch.as_tensor(np.asarray(data))
        if x.ndim == 3:
            x = x.unsqueeze(1)  # MNIST-like [N, H, W]
        elif self.dataset_name != "SVHN":
            x = x.permute(0, 3, 1, 2)  # CIFAR [N, H, W, C]; SVHN is already [N, C, H, W]
        labels = np.asarray(ds.labels if self.dataset_name == "SVHN" else ds.targets, dtype=np.int64)
        names = list(getattr(ds, "classes", None) or [str(i) for i in range(_TORCHVISION[self.dataset_name][0])])
        return x.contiguous(), labels, names

    def _train_data(self) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        if self._train is None:
            self._train = self._open(train=True)
        return self._train

    def labels(self) -> np.ndarray:
        return self._train_data()[1]

    @property
    def has_test_source(self) -> bool:
        return True

    @property
    def class_names(self) -> list[str]:
        return self._train_data()[2]

    @property
    def num_classes(self) -> int:
        return _TORCHVISION[self.dataset_name][0]

    @property
    def in_channels(self) -> int:
        return _TORCHVISION[self.dataset_name][1]

    @property
    def image_size(self) -> int:
        return 28 if self.dataset_name in ("MNIST", "FashionMNIST") else 32

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        x, y, _ = self._train_data()
        return ArrayDataset(x[torch.from_numpy(indices)], y[indices])

    def make_test_dataset(self) -> Dataset:
        x, y, _ = self._open(train=False)
        return ArrayDataset(x, y)
