"""A dataset optimized with litdata (``lightning-cnn convert``) as a DataModule, read through ``StreamingDataset``.

``lightning-cnn convert`` (:mod:`lightning_cnn.convert`) writes the samples as litdata chunks and, beside them,
:data:`METADATA_FILE` (class names, image shape, pixel type) and :data:`LABELS_FILE` (every sample's class index),
so the split is made without reading a sample. litdata is optional: ``pip install 'lightning-cnn[streaming]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_cnn._utils.validation import check_choice
from lightning_cnn.data.base import ClassifierDataModule
from lightning_cnn.data.datasets import collate_images
from lightning_cnn.data.placement import AugmentedDataset

__all__ = [
    "LABELS_FILE",
    "METADATA_FILE",
    "STORED_DTYPES",
    "STREAMING_ORDERS",
    "StoredDtype",
    "StreamingDataModule",
    "StreamingImages",
    "StreamingOrder",
    "import_litdata",
    "read_metadata",
]

#: The file beside litdata's ``index.json`` that describes the samples.
METADATA_FILE = "lightning_cnn.json"
#: The class index of every sample, in the stored order (a ``.npy`` array of int64).
LABELS_FILE = "labels.npy"
StoredDtype = Literal["uint8", "float32"]
STORED_DTYPES: tuple[str, ...] = get_args(StoredDtype)
StreamingOrder = Literal["seeded", "streaming"]
STREAMING_ORDERS: tuple[str, ...] = get_args(StreamingOrder)
_FORMAT = 1


def import_litdata(what: str = "StreamingDataModule") -> ModuleType:
    """The ``litdata`` module, imported on first use so the package works without it.

    Raises:
        ModuleNotFoundError: when litdata is not installed, naming ``what`` needs it and the extra that installs it.
    """
    try:
        import litdata
    except ImportError as err:
        raise ModuleNotFoundError(
            f"{what} needs litdata, which is not installed: pip install 'lightning-cnn[streaming]'"
            " (or pip install litdata)."
        ) from err
    return litdata


def read_metadata(root: str | Path) -> dict[str, Any]:
    """The description ``lightning-cnn convert`` wrote into ``root``, with its ``labels`` array.

    Raises:
        FileNotFoundError: when ``root`` is no folder, or holds no converted dataset (naming the missing file
            and the command that writes one).
        ValueError: for a description of another format, or labels that do not fit it.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected root to be a folder written by lightning-cnn convert, but {root!r} is not.")
    missing = [name for name in ("index.json", METADATA_FILE, LABELS_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Expected root={str(root)!r} to hold a dataset written by lightning-cnn convert, but it has no"
            f" {', '.join(missing)}. Convert the images first: lightning-cnn convert --source IMAGES --output {root}"
        )
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    if metadata.get("format") != _FORMAT:
        raise ValueError(
            f"{folder / METADATA_FILE} has format {metadata.get('format')!r}, but this version reads format {_FORMAT}:"
            " convert the images again with this version."
        )
    labels = np.load(folder / LABELS_FILE, allow_pickle=False)
    if labels.shape != (metadata["num_samples"],):
        raise ValueError(
            f"{folder / LABELS_FILE} holds {labels.shape} labels, but {METADATA_FILE} counts"
            f" {metadata['num_samples']} samples: the folder is damaged; convert the images again."
        )
    return {**metadata, "labels": labels.astype(np.int64)}


def _as_float(image: Any) -> torch.Tensor:
    """A stored image (``uint8`` or ``float32`` ``[C, H, W]``) as float in ``[0, 1]``."""
    x = torch.from_numpy(np.ascontiguousarray(image))
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class _Decode:
    """litdata's sample dict to ``(image, label)``, through an optional per-sample transform (CPU augmentation)."""

    def __init__(self, transform: Any = None) -> None:
        self.transform = transform

    def __call__(self, sample: dict[str, Any]) -> tuple[torch.Tensor, int]:
        x = _as_float(sample["image"])
        return (x if self.transform is None else self.transform(x)), int(sample["label"])


class StreamingImages(Dataset):
    """``(image, label)`` for given sample indices of a converted dataset, read through litdata's ``StreamingDataset``.

    A map-style dataset: item ``i`` is the sample ``indices[i]`` of ``root``, read by index (litdata opens the chunk
    that holds it). The ``StreamingDataset`` is opened in the process that reads (each loader worker its own).

    Args:
        root: the folder ``lightning-cnn convert`` wrote.
        indices: the samples, in the stored order.
    """

    def __init__(self, root: str, indices: np.ndarray) -> None:
        self.root, self.indices = root, np.asarray(indices, dtype=np.int64)
        self._dataset: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}  # a worker process opens its own

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._dataset is None:
            self._dataset = import_litdata().StreamingDataset(self.root, transform=_Decode())
        return self._dataset[int(self.indices[index])]


class StreamingDataModule(ClassifierDataModule):
    """A dataset written by ``lightning-cnn convert`` (litdata chunks), split, normalized and augmented like any source.

    The labels, class names and image shape come from the files beside the chunks, so ``setup`` reads no sample to
    split: the seeded stratified split, the k-fold folds, ``splits.json`` and the normalization from the training
    split are those of the other sources. Samples are read through litdata's ``StreamingDataset``.

    ``order`` sets the training order. ``"seeded"``: the order every source has (the base's seeded, resumable
    sampler, sharded over DDP ranks), reading samples by index, so a run trains exactly as it would on
    :class:`~lightning_cnn.data.arrays.ArrayDataModule` with the same images. ``"streaming"``: litdata's own
    shuffle (chunk by chunk, seeded) and sharding over DDP ranks and loader workers, loaded by its
    ``StreamingDataLoader`` (which saves its place in checkpoints); reads stay within few chunks at a time, the
    order differs from the other sources'. Validation and test read by index in either order.

    Args:
        root: the folder ``lightning-cnn convert`` wrote.
        order: ``"seeded"`` or ``"streaming"``.
        **kwargs: the arguments every source shares (``batch_size``, ``val_fraction``, ``normalize``,
            ``augment``, ``num_workers``, ...), passed on to :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    Raises:
        FileNotFoundError: when ``root`` holds no converted dataset.
        ModuleNotFoundError: when litdata is not installed.
        ValueError: for ``order="streaming"`` with ``device_resident=True`` or a sampler other than ``"shuffle"``.
    """

    def __init__(self, root: str, *, order: StreamingOrder = "seeded", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_choice("order", order, STREAMING_ORDERS)
        import_litdata()
        self.save_hyperparameters()
        if order == "streaming" and (self.device_resident or self.sampler != "shuffle"):
            setting = "device_resident=True" if self.device_resident else f"sampler={self.sampler!r}"
            raise ValueError(
                f"Expected order='seeded' with {setting}, but got order='streaming': litdata's own shuffle draws"
                " each training sample once an epoch from its chunks. Pass order='seeded' (samples read by index)."
            )
        self.root, self.order = str(root), order
        self._metadata = read_metadata(root)

    def labels(self) -> np.ndarray:
        return self._metadata["labels"]

    @property
    def class_names(self) -> list[str]:
        return list(self._metadata["class_names"])

    @property
    def in_channels(self) -> int:
        return int(self._metadata["image_shape"][0])

    @property
    def image_size(self) -> int:
        return int(max(self._metadata["image_shape"][1:]))

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        return StreamingImages(self.root, indices)

    def train_dataloader(self) -> DataLoader:
        """The training loader: the base's seeded one, or (``order="streaming"``) litdata's ``StreamingDataLoader``."""
        if self.order == "seeded":
            return super().train_dataloader()
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders are requested.")
        from litdata.utilities.train_test_split import subset_dataset

        litdata = import_litdata()
        transform = self.train_set.transform if isinstance(self.train_set, AugmentedDataset) else None
        self._restore_pending_rng()
        full = litdata.StreamingDataset(self.root, shuffle=True, seed=self._order_seed(), transform=_Decode(transform))
        dataset = subset_dataset(full, np.sort(self.split["train"]).tolist())
        return litdata.StreamingDataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_images,
            pin_memory=self._pin(),
        )
