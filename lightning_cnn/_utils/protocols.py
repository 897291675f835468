"""What callbacks may ask of a DataModule or a LightningModule: the only attributes they rely on.

Callbacks serve any LightningModule and any DataModule. Where one uses more than Lightning's own API, the
attribute or method is declared here as a :class:`typing.Protocol` and checked with ``isinstance`` (every
protocol is ``runtime_checkable``); an object without it gets the callback's plain behaviour. The package's
DataModules and modules implement them; a user's own may, by giving the same names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = [
    "ChecksCheckpointData",
    "HasAugmentation",
    "HasClassNames",
    "HasInputContract",
    "HasPredictIds",
    "HasPreviewImages",
    "HasSplit",
    "HasTask",
    "HasTestProbabilities",
    "OwnsNormalization",
]


@runtime_checkable
class HasClassNames(Protocol):
    """A DataModule that names its classes (plots, predictions, the run summary)."""

    @property
    def class_names(self) -> Sequence[str]: ...


@runtime_checkable
class HasAugmentation(Protocol):
    """A DataModule whose training augmentation a callback may run (the augmentation preview, TTA's ``augment``)."""

    augmentation: nn.Module | None


@runtime_checkable
class HasPreviewImages(Protocol):
    """A DataModule that hands out a few training images, before augmentation (the augmentation preview)."""

    def preview_images(self, count: int = 4) -> torch.Tensor: ...


@runtime_checkable
class HasPredictIds(Protocol):
    """A DataModule that names the rows of its predict (or test) set: file names, or positions."""

    predict_set: Any
    test_set: Any

    def predict_ids(self) -> list[str]: ...


@runtime_checkable
class ChecksCheckpointData(Protocol):
    """A DataModule that refuses a checkpoint trained on data it would evaluate unfairly or on another scale.

    ``check_checkpoint(checkpoint, path, stage)`` reads what the DataModule saved in ``checkpoint`` (a Lightning
    checkpoint dict; nothing when it holds no such state) and raises :class:`ValueError` naming ``path`` when
    the checkpoint's model was trained on another split where the evaluated set of ``stage`` comes from that
    split, or with other normalization statistics. The ensemble callback asks it of every member.
    """

    def check_checkpoint(self, checkpoint: Mapping[str, Any], path: str, stage: str | None) -> None: ...


@runtime_checkable
class HasSplit(Protocol):
    """A DataModule that splits one pool of labelled samples into ``"train"`` / ``"val"`` / ``"test"`` index arrays.

    The run summary prints the sizes of the three parts.
    """

    @property
    def split(self) -> Mapping[str, Any]: ...

    def labels(self) -> Any: ...


@runtime_checkable
class HasTestProbabilities(Protocol):
    """A callback that keeps its own predicted probabilities of the last test run (TTA, the ensemble).

    ``test_probabilities`` maps a name (``"tta"``, ``"ensemble"``) to this rank's probabilities ``[N, C]`` of the
    test set, in batch order; the training plots draw each as a line of the reliability diagram.
    """

    @property
    def test_probabilities(self) -> Mapping[str, torch.Tensor]: ...


@runtime_checkable
class HasInputContract(Protocol):
    """A DataModule that says what its batches are, so a module can own its input contract.

    ``input_contract()`` returns ``normalize`` (``"dataset"``, ``"instance"`` or ``"none"``), ``mean`` and ``std``
    (per-channel lists for ``"dataset"``, or ``None``), ``in_channels``, ``image_size`` (``[H, W]``, or ``None``)
    and ``class_names`` (or ``None``). A method, not properties: checking for it evaluates nothing.
    """

    def input_contract(self) -> Mapping[str, Any]: ...


@runtime_checkable
class OwnsNormalization(Protocol):
    """A module that normalizes raw ``[0, 1]`` images itself when ``normalizes_inputs`` is true.

    A DataModule then hands it its batches unnormalized (augmented only), and normalizes them for any other
    module, so nothing is normalized twice.
    """

    normalizes_inputs: bool


@runtime_checkable
class HasTask(Protocol):
    """A module that says its task, ``"multilabel"`` or ``"multiclass"``.

    TTA, ensembles and predictions of a multi-label module merge, score and write per-label sigmoid probabilities.
    """

    @property
    def task(self) -> str: ...
