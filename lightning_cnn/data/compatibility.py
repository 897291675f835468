"""Checks that a model, a resumed checkpoint or an ensemble member fits the data a DataModule gives.

Each check raises :class:`ValueError` with a message that names both sides and says what to change: a model
built for another number of classes or channels, a checkpoint trained on another split (its training images
could be in the evaluated set), or one normalized on another scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from lightning_cnn.data.splits import held_out_digest, split_digest

if TYPE_CHECKING:
    from lightning_cnn.data.base import ClassifierDataModule

__all__ = ["check_member_checkpoint", "check_model_matches", "check_resume_settings", "datamodule_state"]

#: The settings that decide the split; a checkpoint must agree on them to be resumed or tested.
SPLIT_SETTINGS = ("split_seed", "val_fraction", "test_fraction", "num_folds", "fold")


def check_model_matches(data: ClassifierDataModule, module: Any) -> None:
    """Refuse a model whose class or channel count (in its ``hparams``) disagrees with the data, naming both."""
    hparams: Any = getattr(module, "hparams", None)
    if module is None or not hasattr(hparams, "get"):
        return
    for attr, hint in (
        ("num_classes", "classes"),
        ("in_channels", "image channels (grayscale 1, RGB 3)"),
    ):
        theirs = hparams.get(attr)
        try:
            ours = getattr(data, attr)
        except (NotImplementedError, FileNotFoundError, ValueError):
            continue
        if theirs is not None and ours is not None and int(theirs) != int(ours):
            raise ValueError(
                f"{type(module).__name__} was built with {attr}={theirs}, but {type(data).__name__} has {ours}"
                f" {hint}. Build the model with {attr}={ours} (the command line links it from the data)."
            )


def check_resume_settings(data: ClassifierDataModule, state_dict: Mapping[str, Any]) -> None:
    """Refuse a DataModule state saved with other split settings than ``data``'s (see :data:`SPLIT_SETTINGS`)."""
    # A different split would let test samples of this run be training samples of the checkpoint's.
    if not data.has_pool:  # only a folder to predict: no split to overlap
        return
    for key in SPLIT_SETTINGS:
        if key in state_dict and state_dict[key] != getattr(data, key) and key in ("num_folds", "fold"):
            theirs, ours = (
                _fold_name(state_dict.get("num_folds"), state_dict.get("fold")),
                _fold_name(data.num_folds, data.fold),
            )
            raise ValueError(
                f"The checkpoint was trained with {key}={state_dict[key]!r} ({theirs}), but this {type(data).__name__}"
                f" has {key}={getattr(data, key)!r} ({ours}): its validation images would be the checkpoint's training"
                f" data. Pass {key}={state_dict[key]!r} (on the command line: --data.{key} {state_dict[key]})."
            )
        if key in state_dict and state_dict[key] != getattr(data, key):
            raise ValueError(
                f"The checkpoint was trained with {key}={state_dict[key]!r}, but this {type(data).__name__}"
                f" has {key}={getattr(data, key)!r}: its test split would overlap the checkpoint's training"
                f" data. Pass {key}={state_dict[key]!r} (on the command line: --data.{key} {state_dict[key]})."
            )


def _fold_name(num_folds: int | None, fold: int | None) -> str:
    return "a single split" if num_folds is None else f"fold {fold} of {num_folds}"


def datamodule_state(checkpoint: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The state a :class:`~lightning_cnn.data.base.ClassifierDataModule` saved in a Lightning checkpoint, if any."""
    return next((v for v in checkpoint.values() if isinstance(v, Mapping) and "split_digest" in v), None)


def check_member_checkpoint(
    data: ClassifierDataModule, checkpoint: Mapping[str, Any], path: str, stage: str | None
) -> None:
    """Refuse a checkpoint built for other classes or channels, normalized otherwise, or trained on another split.

    The split matters only where it leaks; see :meth:`~lightning_cnn.data.base.ClassifierDataModule.check_checkpoint`.
    """
    name = type(data).__name__
    hparams = checkpoint.get("hyper_parameters")
    for attr, hint in (("num_classes", "classes"), ("in_channels", "image channels")):
        theirs = hparams.get(attr) if isinstance(hparams, Mapping) else None
        ours = getattr(data, attr)
        if isinstance(theirs, int) and theirs != ours:
            raise ValueError(
                f"Ensemble member {path} was built with {attr}={theirs}, but this {name} has {ours} {hint}: it"
                f" classifies other data. Use members trained on this data ({attr}={ours})."
            )
    state = datamodule_state(checkpoint)
    if state is None:
        return
    own_set = data.has_test_source or (stage == "predict" and data.predict_set is not None)
    from_split = stage == "val" or not own_set
    folds = (state.get("num_folds"), state.get("fold")), (data.num_folds, data.fold)
    if from_split and stage == "val" and folds[0] != folds[1] and state.get("split_digest") is not None:
        raise ValueError(
            f"Ensemble member {path} was trained on {_fold_name(*folds[0])}, but this {name} validates on"
            f" {_fold_name(*folds[1])}: this validation set was (in part) its training data. Members of other"
            " folds may be ensembled on the test split only (stages=('test',))."
        )
    # The test split is the same for every fold: members of other folds score it fairly.
    held_out = stage != "val" and "test_digest" in state
    key, digest = ("test_digest", held_out_digest) if held_out else ("split_digest", split_digest)
    theirs = state.get(key)
    if from_split and theirs is not None and theirs != (ours := digest(data.split)):
        raise ValueError(
            f"Ensemble member {path} was trained on another split (digest {theirs}) than this {name}'s ({ours}):"
            " its training images may be in the evaluated set. Use members trained on the same data with the"
            " same split_seed and fractions."
        )
    for key in ("mean", "std"):
        theirs, mine = state.get(key), getattr(data, key)
        # Statistics of two splits of one data set differ a little; another normalization differs a lot.
        if (
            theirs is not None
            and mine is not None
            and not torch.allclose(torch.tensor(theirs), torch.tensor(mine), rtol=0.05, atol=0.01)
        ):
            raise ValueError(
                f"Ensemble member {path} was trained with normalization {key}={theirs}, but this {name}"
                f" normalizes with {key}={mine} (more than 5% apart): the member would see inputs on another"
                " scale."
            )
