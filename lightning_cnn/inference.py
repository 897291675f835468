"""Using a trained model: one call from a checkpoint to a ready model, one to classify images of any kind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lightning_cnn._utils.io import load_checkpoint_file
from lightning_cnn._utils.validation import check_choice
from lightning_cnn.callbacks.members import import_class
from lightning_cnn.data.arrays import ARRAY_LAYOUTS, CHANNEL_COUNTS, ArrayLayout, array_layout
from lightning_cnn.data.readers import load_image
from lightning_cnn.functional.multilabel import labels_above
from lightning_cnn.models import ClassifierModule
from lightning_cnn.models.contract import InputContract

__all__ = ["Classification", "classify", "load_classifier", "to_model_input"]

#: The weights of PIL's ``convert("L")`` (ITU-R 601-2 luma), so RGB arrays turn gray as training files did.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Classification:
    """What :func:`classify` returns: a predicted class name and the class probabilities of each image.

    For a multi-label model each image gets the labels whose probability is above the threshold
    (:attr:`label_sets`), and the probabilities are per label (sigmoid; a row does not sum to one).

    Attributes:
        labels: the predicted class name of each image (multi-label: its labels joined by ``";"``).
        probabilities: ``[N, num_classes]`` class probabilities, rows in the order of the images.
        class_names: the names of the probability columns.
        label_sets: a multi-label model's labels of each image, above the threshold (``None``: multiclass).
    """

    labels: list[str]
    probabilities: torch.Tensor
    class_names: list[str]
    label_sets: list[list[str]] | None = None

    @property
    def confidences(self) -> list[float]:
        """The probability of each predicted class."""
        return self.probabilities.max(-1).values.tolist()


def load_classifier(
    checkpoint: str | os.PathLike[str], model_class: str | type | None = None, map_location: Any = "cpu"
) -> ClassifierModule:
    """A ready model from a checkpoint alone: rebuilt, weights loaded, in eval mode.

    The class is ``model_class`` when given, else the one the command line saved (``_class_path``), else the
    one the model's input contract names. No weights file and no download is needed: the checkpoint holds
    every tensor, the normalization and the class names.

    Args:
        checkpoint: a Lightning checkpoint of a :class:`~lightning_cnn.ClassifierModule`.
        model_class: the class (or its import path), for a checkpoint that names none.
        map_location: where to put the tensors, as in :func:`torch.load`.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when no class is known, or it is not a ClassifierModule.

    Example:
        >>> import tempfile, lightning.pytorch as pl
        >>> from lightning_cnn import SimpleCNN
        >>> model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
        >>> model.input_contract.learn({"normalize": "none", "in_channels": 1, "image_size": 8,
        ...     "class_names": ["cat", "dog"], "model_class": "lightning_cnn.SimpleCNN"})
        >>> path = f"{tempfile.mkdtemp()}/model.ckpt"
        >>> torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
        ...             "pytorch-lightning_version": pl.__version__}, path)
        >>> ready = load_classifier(path)
        >>> type(ready).__name__, ready.training, ready.input_contract.class_names
        ('SimpleCNN', False, ['cat', 'dog'])
    """
    ckpt = load_checkpoint_file(checkpoint)
    cls: Any = model_class
    if cls is None:
        cls = (ckpt.get("hyper_parameters") or {}).get("_class_path")
    if cls is None:
        cls = InputContract.from_checkpoint(ckpt).model_class
    if cls is None:
        raise ValueError(
            f"The checkpoint {os.fspath(checkpoint)!r} names no model class: pass model_class"
            " (e.g. 'lightning_cnn.SimpleCNN')."
        )
    if isinstance(cls, str):
        cls = import_class(cls)
    if not (isinstance(cls, type) and issubclass(cls, ClassifierModule)):
        raise ValueError(f"Expected model_class to be a ClassifierModule subclass, but got {cls!r}.")
    model = cls.load_from_checkpoint(os.fspath(checkpoint), map_location=map_location)
    return model.eval()


def _channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` with ``channels`` channels: gray repeated, RGB(A) to luma, alpha dropped."""
    c = x.shape[1]
    if channels is None or c == channels:
        return x
    if c == 4:
        x, c = x[:, :3], 3
    if channels == 3 and c == 1:
        return x.expand(-1, 3, -1, -1)
    if channels == 1 and c == 3:
        weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    if c == channels:
        return x
    raise ValueError(f"Expected images with 1, 3 or 4 channels for a model of {channels} channels, but got {c}.")


def _as_batch(image: Any, layout: ArrayLayout = "auto") -> torch.Tensor:
    """One image or a batch, in ``[0, 1]``, as a float tensor ``[N, C, H, W]``."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim not in (2, 3, 4):
            raise ValueError(
                "Expected an array of 2, 3 or 4 dimensions (H, W), (H, W, C), (N, H, W) or (N, C, H, W) / (N, H, W, C),"
                f" but got {array.shape}."
            )
        if array.ndim == 2:
            array = array[None, ..., None]  # one grayscale image
        elif array.ndim == 3:
            # One image of the image libraries (H, W, C) when its last axis holds channels, else a batch of grayscale
            # images (N, H, W), as ArrayDataModule takes them.
            array = array[None] if array.shape[-1] in CHANNEL_COUNTS else array[..., None]
        elif array_layout(array.shape, "images", layout) == "channels_first":
            array = array.transpose(0, 2, 3, 1)
        scaled = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(scaled)).permute(0, 3, 1, 2)
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.ndim == 2:
            x = x.unsqueeze(0)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"Expected a tensor of 2, 3 or 4 dimensions ([C,] H, W) or (N, C, H, W), but got {tuple(x.shape)}."
            )
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return x.unsqueeze(0) if x.ndim == 3 else x
    from PIL import Image

    if isinstance(image, Image.Image):
        img = image.convert("RGB") if image.mode not in ("L", "RGB") else image
        return _as_batch(np.asarray(img, dtype=np.uint8))
    raise TypeError(
        "Expected images to be file paths, PIL images, NumPy arrays or tensors (or a list of them), but got"
        f" {type(image).__name__}."
    )


def to_model_input(images: Any, model: ClassifierModule, layout: ArrayLayout = "auto") -> torch.Tensor:
    """Images of any kind as the raw ``[N, C, H, W]`` batch in ``[0, 1]`` the model was trained on.

    Files are decoded as the folder DataModule decodes them (grayscale or RGB, resized bilinearly to the
    trained size). NumPy arrays (``uint8`` divided by 255) are read as :class:`~lightning_cnn.ArrayDataModule`
    reads them, so the arrays a model was trained on classify as they are: ``H, W`` is one grayscale image,
    ``H, W, C`` one image of the image libraries (a last axis of 1, 3 or 4 channels), other 3-D arrays a batch
    ``N, H, W`` of grayscale images, and 4-D arrays ``N, C, H, W`` or ``N, H, W, C`` by ``layout`` (``"auto"``:
    the axis of 1, 3 or 4 channels). Tensors follow torch's layout (``[C,] H, W`` or ``N, C, H, W``). Channels
    and size are then brought to the model's input contract.

    Raises:
        TypeError: for an object of another kind.
        ValueError: for an array or tensor of another shape, or a 4-D array whose layout ``"auto"`` cannot tell.
    """
    check_choice("layout", layout, ARRAY_LAYOUTS)
    contract = model.input_contract
    channels, size = contract.in_channels, contract.image_size
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    batches = []
    for item in items:
        if isinstance(item, (str, Path)):
            square = size[0] if size is not None and size[0] == size[1] else None
            x = load_image(item, "grayscale" if channels == 1 else "rgb", square).unsqueeze(0)
        else:
            x = _as_batch(item, layout)
        x = _channels(x, channels)
        if size is not None and tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        batches.append(x)
    if not batches:
        raise ValueError("Expected at least one image to classify, but got none.")
    return torch.cat(batches)


@torch.no_grad()
def classify(
    model: ClassifierModule, images: Any, batch_size: int = 256, threshold: float = 0.5, layout: ArrayLayout = "auto"
) -> Classification:
    """Classify images: file paths, PIL images, NumPy arrays or tensors, one or a list (see :func:`to_model_input`).

    Args:
        model: a trained model (e.g. from :func:`load_classifier`); it runs in eval mode, on its device.
        images: one image, a batch, or a list of them.
        batch_size: images per forward.
        threshold: a multi-label model's probability above which an image has a label.
        layout: of 4-D NumPy arrays: ``"auto"``, ``"channels_first"`` or ``"channels_last"`` (see
            :func:`to_model_input`).

    Returns:
        The predicted class names and the probabilities, named by the model's class names (``"0"``, ``"1"``, ...
        when it has none).

    Example:
        >>> from lightning_cnn import SimpleCNN
        >>> model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
        >>> model.input_contract.learn({"normalize": "instance", "in_channels": 1, "image_size": 8,
        ...     "class_names": ["cat", "dog"]})
        >>> result = classify(model, np.zeros((16, 16, 3), dtype=np.uint8))  # resized to 8x8, made gray
        >>> result.labels[0] in ("cat", "dog"), tuple(result.probabilities.shape)
        (True, (1, 2))
    """
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        x = to_model_input(images, model, layout)
        probs = torch.cat([model.probabilities(model(chunk.to(device))).cpu() for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)
    names = model.input_contract.class_names or [str(i) for i in range(probs.shape[1])]
    if model.multilabel:
        sets = labels_above(probs, names, threshold)
        return Classification([";".join(s) for s in sets], probs, names, sets)
    return Classification([names[i] for i in probs.argmax(-1).tolist()], probs, names)
