"""A classifier's input contract: the channels, size, normalization and class names it was trained with.

The contract is a small :class:`~torch.nn.Module` inside every :class:`~lightning_cnn.models.ClassifierModule`.
It learns what the training batches are from the DataModule (any that implements
:class:`~lightning_cnn._utils.protocols.HasInputContract`) and keeps it in the model's ``state_dict`` as
tensors only (the statistics as ``float32`` buffers, the rest as UTF-8 JSON bytes in a ``uint8`` buffer), so
``torch.load(weights_only=True)`` reads it and every copy of the weights (best weights, snapshots, ensemble
members) carries it. A model loaded from its checkpoint alone then normalizes raw ``[0, 1]`` images itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import nn

from lightning_cnn._utils.io import load_checkpoint_file
from lightning_cnn._utils.protocols import HasInputContract
from lightning_cnn._utils.validation import check_choice

__all__ = ["CONTRACT_MODES", "InputContract", "OwnsInputContract", "check_contract"]

#: How a contract normalizes: as the DataModule's ``normalize`` names it.
CONTRACT_MODES: tuple[str, ...] = ("dataset", "instance", "none")


class InputContract(nn.Module):
    """What a classifier expects of its input, and the normalization of raw ``[0, 1]`` images it implies.

    Before it is learned (:attr:`learned` is ``False``) it passes images through unchanged and holds no
    facts. :meth:`learn` takes a DataModule's ``input_contract()`` mapping: ``normalize`` (``"dataset"``,
    ``"instance"`` or ``"none"``), ``mean`` and ``std`` (per channel, for ``"dataset"``), ``in_channels``,
    ``image_size`` (``[H, W]`` or one side) and ``class_names``.

    Example:
        >>> contract = InputContract()
        >>> contract.learn({"normalize": "dataset", "mean": [0.5], "std": [0.25], "in_channels": 1,
        ...                 "image_size": 2, "class_names": ["a", "b"]})
        >>> contract(torch.full((1, 1, 2, 2), 0.75))[0, 0, 0]
        tensor([1., 1.])
        >>> restored = InputContract()
        >>> restored.load_state_dict(contract.state_dict())
        <All keys matched successfully>
        >>> restored.describe()
        {'normalize': 'dataset', 'in_channels': 1, 'image_size': [2, 2], 'class_names': ['a', 'b']}
    """

    mean: torch.Tensor
    std: torch.Tensor
    spec: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        # Always there (empty until learned), so the model's state_dict has the same keys before and after fit.
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.zeros(0))
        self.register_buffer("spec", torch.zeros(0, dtype=torch.uint8))
        self._facts: dict[str, Any] = {}

    # ------------------------------------------------------------------ facts
    @property
    def learned(self) -> bool:
        """Whether the contract holds what the model was trained with."""
        return bool(self._facts)

    @property
    def mode(self) -> str:
        """``"dataset"``, ``"instance"`` or ``"none"`` (``"none"`` before it is learned)."""
        return str(self._facts.get("normalize", "none"))

    @property
    def in_channels(self) -> int | None:
        """Image channels, or ``None`` when not known."""
        return self._facts.get("in_channels")

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The ``(height, width)`` of the training images, or ``None`` when not known."""
        size = self._facts.get("image_size")
        return None if size is None else (int(size[0]), int(size[1]))

    @property
    def model_class(self) -> str | None:
        """The import path of the model's class (``"lightning_cnn.models.simple_cnn.SimpleCNN"``), when known."""
        return self._facts.get("model_class")

    @property
    def class_names(self) -> list[str] | None:
        """Class names in class-index order, or ``None`` when not known."""
        names = self._facts.get("class_names")
        return None if names is None else list(names)

    @property
    def task(self) -> str:
        """``"multilabel"`` (one sigmoid per label) or ``"multiclass"`` (one softmax; also before it is learned)."""
        return str(self._facts.get("task") or "multiclass")

    def describe(self) -> dict[str, Any]:
        """The facts as plain values (``normalize``, ``in_channels``, ``image_size``, ``class_names``, ...)."""
        order = ("normalize", "in_channels", "image_size", "class_names", "task", "model_class")
        return {key: self._facts[key] for key in order if key in self._facts}

    def statistics(self) -> tuple[list[float], list[float]] | None:
        """``(mean, std)`` of ``"dataset"`` normalization as lists, or ``None``."""
        if self.mean.numel() == 0:
            return None
        return self.mean.tolist(), self.std.tolist()

    def learn(self, contract: Mapping[str, Any]) -> None:
        """Take the contract of a DataModule's batches (see the class docstring); unknown facts stay ``None``.

        Raises:
            ValueError: for an unknown ``normalize`` mode, or ``"dataset"`` statistics of unequal lengths.
        """
        mode = check_choice("normalize", contract.get("normalize", "none"), CONTRACT_MODES)
        mean, std = contract.get("mean"), contract.get("std")
        if mode == "dataset" and mean is not None and std is not None:
            if len(mean) != len(std):
                raise ValueError(f"Expected mean and std of one length, but got {list(mean)!r} and {list(std)!r}.")
            device = self.spec.device
            self.mean = torch.tensor([float(v) for v in mean], dtype=torch.float32, device=device)
            self.std = torch.tensor([float(v) for v in std], dtype=torch.float32, device=device)
        elif mode != "dataset":
            self.mean, self.std = self.mean[:0], self.std[:0]
        size = contract.get("image_size")
        if isinstance(size, int):
            size = [size, size]
        names = contract.get("class_names")
        channels = contract.get("in_channels")
        facts = {
            "normalize": mode,
            "in_channels": None if channels is None else int(channels),
            "image_size": None if size is None else [int(size[0]), int(size[1])],
            "class_names": None if names is None else [str(n) for n in names],
        }
        if contract.get("task") == "multilabel":  # multiclass is the default: older checkpoints hold no task
            facts["task"] = "multilabel"
        if contract.get("model_class") is not None:  # the import path of the model's class, to rebuild it alone
            facts["model_class"] = str(contract["model_class"])
        self._set_facts(facts)

    def _set_facts(self, facts: dict[str, Any]) -> None:
        self._facts = facts
        data = json.dumps(facts, sort_keys=True).encode()
        self.spec = torch.tensor(list(data), dtype=torch.uint8, device=self.spec.device)

    # ------------------------------------------------------------------ state
    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike[str] | Mapping[str, Any]) -> InputContract:
        """The contract a model's Lightning checkpoint holds (read with ``weights_only=True``; unlearned if none).

        Raises:
            FileNotFoundError: when the file does not exist.
        """
        ckpt = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint_file(checkpoint)
        prefix = "input_contract."
        state = {k[len(prefix) :]: v for k, v in (ckpt.get("state_dict") or {}).items() if k.startswith(prefix)}
        contract = cls()
        if state:
            contract.load_state_dict(state)
        return contract

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The buffers' shapes follow the data (empty before learning): taken as they come. A state dict without
        # them (saved before models held a contract) leaves this one as it is.
        spec = state_dict.get(prefix + "spec")
        if spec is None:
            return
        device = self.spec.device
        for name in ("mean", "std"):
            value = state_dict.get(prefix + name)
            value = torch.zeros(0) if value is None else value.detach().float()
            setattr(self, name, value.to(device, copy=True))
        self._facts = json.loads(bytes(spec.detach().cpu().tolist()).decode()) if spec.numel() else {}
        self.spec = spec.detach().to(device, copy=True)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize raw images ``[B, C, H, W]`` (a new tensor; unchanged before the contract is learned)."""
        mode = self.mode
        if mode == "instance":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
            return (x - mean) / std
        if mode != "dataset":
            return x
        if not torch.jit.is_tracing() and self.mean.numel() == 0:
            raise RuntimeError(
                "The model's input contract says normalize='dataset' but holds no statistics: train it, or load a"
                " checkpoint that holds them."
            )
        shape = (1, -1, 1, 1)
        return (x - self.mean.to(x.device, x.dtype).view(shape)) / self.std.to(x.device, x.dtype).view(shape)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._facts.items() if k != "class_names")


def check_contract(contract: InputContract, given: Mapping[str, Any], where: str, given_by: str) -> None:
    """Refuse inputs of another contract than the model's, naming each fact that differs and both values.

    Facts the model or ``given`` does not know (``None``) are not compared; ``image_size`` may be one side.

    Args:
        contract: the model's contract.
        given: ``in_channels``, ``image_size`` and ``class_names`` of what the model is fed.
        where: the model, for the message (e.g. its checkpoint's path).
        given_by: what feeds it, for the message (e.g. the DataModule's class name).

    Raises:
        ValueError: naming every fact that differs.

    Example:
        >>> contract = InputContract()
        >>> contract.learn({"normalize": "none", "in_channels": 1, "image_size": 8, "class_names": ["a", "b"]})
        >>> check_contract(contract, {"in_channels": 3}, "model.ckpt", "the data")
        Traceback (most recent call last):
        ...
        ValueError: model.ckpt was trained on in_channels=1, but the data gives in_channels=3. ...
    """
    if not contract.learned:
        return
    size = given.get("image_size")
    if isinstance(size, int):
        size = (size, size)
    theirs: dict[str, Any] = {
        "in_channels": given.get("in_channels"),
        "image_size": None if size is None else tuple(int(s) for s in size),
        "class_names": None if given.get("class_names") is None else [str(n) for n in given["class_names"]],
        "task": given.get("task"),
    }
    ours: dict[str, Any] = {
        "in_channels": contract.in_channels,
        "image_size": contract.image_size,
        "class_names": contract.class_names,
        "task": contract.task,
    }
    differ = [k for k in ours if ours[k] is not None and theirs[k] is not None and ours[k] != theirs[k]]
    if not differ:
        return

    def show(key: str, value: Any) -> str:
        if key == "image_size":
            return f"image_size={value[0]}x{value[1]}"
        return f"{key}={value!r}"

    trained = ", ".join(show(k, ours[k]) for k in differ)
    fed = ", ".join(show(k, theirs[k]) for k in differ)
    raise ValueError(
        f"{where} was trained on {trained}, but {given_by} gives {fed}. Feed it images as it was trained on"
        " (channels, size and classes of its checkpoint), or use a checkpoint trained on these."
    )


class OwnsInputContract:
    """The input contract's part of a classifier (a mixin of :class:`~lightning_cnn.models.ClassifierModule`).

    The module holds an :class:`InputContract` as ``input_contract``; ``forward`` normalizes raw images with
    it when :attr:`normalizes_inputs` is true. It learns the contract from the DataModule at ``setup`` (in
    ``fit``, or in any stage while it has none), and at the start of ``test`` and ``predict`` (after a
    checkpoint is restored) refuses a DataModule whose channels, image size or class names differ from it.

    A subclass that overrides ``forward`` without setting ``normalizes_inputs`` in its class body gets
    ``normalizes_inputs = False``: its own ``forward`` may not normalize, so the DataModule normalizes for it.
    """

    #: Whether ``forward`` normalizes raw ``[0, 1]`` images itself (DataModules then leave batches unnormalized).
    normalizes_inputs: ClassVar[bool] = True
    input_contract: InputContract
    _trainer: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in vars(cls) and "normalizes_inputs" not in vars(cls):
            cls.normalizes_inputs = False

    def normalize_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw images ``[B, C, H, W]`` in ``[0, 1]`` normalized as in training (as they are without a contract)."""
        return self.input_contract(x) if self.normalizes_inputs else x

    def _datamodule(self) -> Any:
        trainer = self._trainer  # private, as in uses_channels_last: None without a Trainer
        return getattr(trainer, "datamodule", None) if trainer is not None else None

    def learn_input_contract(self, stage: str) -> None:
        """Take the DataModule's contract: when fitting, or in any stage while the module has none.

        Raises:
            ValueError: in ``fit``, for a weight-averaging callback that copied the module before this ``setup``
                (Lightning's ``EMAWeightAveraging``): its copy would not have the contract's buffers.
        """
        if stage == "fit":
            self._refuse_early_average()
        dm = self._datamodule()
        if isinstance(dm, HasInputContract) and (stage == "fit" or not self.input_contract.learned):
            model_class = f"{type(self).__module__}.{type(self).__qualname__}"
            self.input_contract.learn({**dm.input_contract(), "model_class": model_class})

    def _refuse_early_average(self) -> None:
        for callback in getattr(self._trainer, "callbacks", None) or ():
            # Private: Lightning's WeightAveraging keeps its copy in `_average_model` (no public accessor).
            if isinstance(callback, WeightAveraging) and getattr(callback, "_average_model", None) is not None:
                raise ValueError(
                    f"{type(callback).__name__} copied the {type(self).__name__} in its setup, before the module's"
                    " own setup learns its input contract (normalization statistics, class names): the averaged copy"
                    " would have buffers of another shape. Use lightning_cnn.EMAWeightAveraging, which copies the"
                    " module when fit starts (on the command line --trainer.callbacks+=EMAWeightAveraging is it)."
                )

    def _check_fed_contract(self) -> None:
        dm = self._datamodule()
        if isinstance(dm, HasInputContract):
            where = getattr(self._trainer, "ckpt_path", None) or f"The {type(self).__name__}"
            check_contract(self.input_contract, dm.input_contract(), str(where), type(dm).__name__)

    def on_test_start(self) -> None:
        self._check_fed_contract()

    def on_predict_start(self) -> None:
        self._check_fed_contract()
