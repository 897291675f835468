"""Loading a local weights file into a timm network: by key names or key order, with the first conv adapted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from lightning_cnn._utils.io import UnreadableCheckpointError, load_checkpoint_file
from lightning_cnn._utils.validation import check_choice

__all__ = ["MIN_MATCHED_SHARE", "WEIGHTS_MAPPING_NAMES", "WeightsMappingName", "load_weights", "read_state_dict"]

WeightsMappingName = Literal["names", "order"]
WEIGHTS_MAPPING_NAMES: tuple[str, ...] = get_args(WeightsMappingName)

#: The share of a backbone's tensors (its classifier aside) that ``TransferClassifier(weights=...)`` must find in the
#: file: below it the file is another network's, and training would start from random initialization.
MIN_MATCHED_SHARE = 0.5

# Prefixes of a checkpoint of a module that wraps the network (ours: "backbone.").
_WRAPPER_PREFIXES = ("backbone.", "model.", "net.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The network's tensors in a state dict file or a Lightning checkpoint, without a wrapper's key prefix.

    Raises:
        FileNotFoundError: when ``path`` is no file.
        ValueError: for a file that holds neither a state dict nor a Lightning checkpoint, or is no file of
            ``torch.save`` (a text file, a file cut off).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"weights={str(path)!r} does not exist or is not a file.")
    try:
        obj: Any = load_checkpoint_file(file)
    except UnreadableCheckpointError as err:
        raise ValueError(f"weights={str(path)!r} is no state dict or checkpoint file. {err}") from err
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # a Lightning checkpoint
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights={str(path)!r} holds neither a state dict nor a Lightning checkpoint.")
    sd = dict(obj)
    for prefix in _WRAPPER_PREFIXES:
        inner = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if inner:
            return inner
    return sd


def _adapt_first_conv(model: nn.Module, key: str, tensor: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Pretrained RGB input-conv weights adapted to another channel count by timm, or ``None`` for another tensor."""
    if (
        tensor.ndim == 4
        and target.ndim == 4
        and tensor.shape[0] == target.shape[0]
        and tensor.shape[2:] == target.shape[2:]
    ):
        first = getattr(model, "pretrained_cfg", {}).get("first_conv")
        if first and key.startswith(str(first)) and tensor.shape[1] != target.shape[1]:
            from timm.models import adapt_input_conv  # timm loads only when weights are adapted

            return adapt_input_conv(target.shape[1], tensor)
    return None


def _show(keys: list[str]) -> str:
    return "none" if not keys else f"{len(keys)} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"


def load_weights(
    model: nn.Module, path: str | Path, mapping: WeightsMappingName = "names", *, min_share: float = 0.0
) -> dict[str, list[str]]:
    """Load a state dict or Lightning checkpoint into a timm ``model`` and report what matched.

    ``mapping="names"`` matches keys by name. ``mapping="order"`` maps a foreign key layout (another library's
    names for the same network) onto the model key by key, in order: the two must hold the same number of
    tensors, and every pair must agree in shape, or the load is refused naming the first mismatch. In both
    modes, classifier tensors whose shape differs (another class count) are skipped and reported, and a first
    convolution with another input-channel count is adapted as timm adapts pretrained weights.

    Args:
        model: the timm model to load into.
        path: a ``.pth``/``.pt`` state dict or a Lightning ``.ckpt``.
        mapping: ``"names"`` or ``"order"``.
        min_share: refuse the file (loading nothing) when it gives fewer than this share of the model's tensors,
            its classifier aside (:data:`MIN_MATCHED_SHARE` for ``TransferClassifier``).

    Returns:
        ``{"missing": [...], "unexpected": [...], "skipped": [...]}`` key lists.

    Raises:
        FileNotFoundError: when ``path`` is no file.
        ValueError: for a file without tensors, a shape mismatch outside the classifier, or fewer matched tensors
            than ``min_share``, naming what matched.
    """
    check_choice("weights_mapping", mapping, WEIGHTS_MAPPING_NAMES)
    source = read_state_dict(path)
    target = model.state_dict()
    classifier = str(getattr(model, "pretrained_cfg", {}).get("classifier", ""))
    skipped: list[str] = []
    if mapping == "order":
        if len(source) != len(target):
            raise ValueError(
                f"weights_mapping='order' needs the same number of tensors, but {str(path)!r} has {len(source)} and"
                f" the model has {len(target)}."
            )
        pairs = list(zip(source.items(), target.items(), strict=True))
    else:
        pairs = [((k, v), (k, target[k])) for k, v in source.items() if k in target]
    loaded: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, dst) in pairs:
        if tensor.shape == dst.shape:
            loaded[dst_key] = tensor
            continue
        adapted = _adapt_first_conv(model, dst_key, tensor, dst)
        if adapted is not None:
            loaded[dst_key] = adapted
        elif classifier and dst_key.startswith(classifier):
            skipped.append(dst_key)
        else:
            raise ValueError(
                f"Shape mismatch loading {str(path)!r}: {src_key!r} has shape {tuple(tensor.shape)} but the model's"
                f" {dst_key!r} has {tuple(dst.shape)}."
            )
    body = [k for k in target if not (classifier and k.startswith(classifier))]
    matched = [k for k in body if k in loaded]
    if body and len(matched) < min_share * len(body):
        hint = (
            " The file holds as many tensors as the model, under other names: weights_mapping='order' maps them."
            if mapping == "names" and len(source) == len(target)
            else " Give a file of this backbone's weights (or another backbone= to match the file)."
        )
        raise ValueError(
            f"weights={str(path)!r} gives {len(matched)} of the {len(body)} tensors of the model (its classifier"
            f" aside), below the {min_share:.0%} needed to be its weights: matched {_show(matched)}; the file's"
            f" tensors: {_show(list(source))}; the model's: {_show(body)}.{hint}"
        )
    result = model.load_state_dict(loaded, strict=False)
    unexpected = [k for k in source if k not in target] if mapping == "names" else []
    missing = [k for k in result.missing_keys if k not in skipped]
    rank_zero_info(
        f"Loaded {len(loaded)} of {len(target)} tensors from {path} (weights_mapping={mapping!r}); missing:"
        f" {_show(missing)}; unexpected: {_show(unexpected)}; skipped for their shape: {_show(skipped)}."
    )
    return {"missing": missing, "unexpected": unexpected, "skipped": skipped}
