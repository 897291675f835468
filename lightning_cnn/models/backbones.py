"""timm backbones by name: checked with close-match suggestions, built, and split into stages.

timm is imported inside each function, so importing :mod:`lightning_cnn` does not load it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_cnn._utils.validation import did_you_mean

__all__ = ["create_backbone", "resolve_backbone", "stage_parameters"]


def resolve_backbone(name: str) -> str:
    """Return ``name`` when timm knows it; otherwise raise with the closest names.

    Raises:
        ValueError: for a name timm does not know, with close matches and how to list every name.

    Example:
        >>> resolve_backbone("resnet18")
        'resnet18'
        >>> resolve_backbone("resnet181")
        Traceback (most recent call last):
        ...
        ValueError: Unknown timm backbone 'resnet181'. Did you mean 'resnet18' or 'resnet18d' or 'resnet101'? ...
    """
    import timm

    known = timm.list_models()
    if name in known:
        return name
    raise ValueError(
        f"Unknown timm backbone {name!r}.{did_you_mean(name, known)} All {len(known)} names: timm.list_models(), or"
        " a pattern such as timm.list_models('efficientnet*')."
    )


def create_backbone(name: str, pretrained: bool, num_classes: int, in_channels: int) -> Any:
    """``timm.create_model``, with an error that says how to load weights offline when a download fails.

    Raises:
        RuntimeError: when ``pretrained`` weights cannot be fetched.
    """
    import timm

    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels)
    except Exception as err:
        if not pretrained:
            raise
        raise RuntimeError(
            f"Could not fetch pretrained weights for {name!r} ({type(err).__name__}: {err}). Without network"
            " access, pass weights=PATH to a local state dict or checkpoint instead."
        ) from err


def stage_parameters(backbone: Any, head: nn.Module) -> list[list[nn.Parameter]]:
    """A timm backbone's parameters grouped by stage, from the stem to the last stage (``head`` excluded).

    Example:
        >>> import timm
        >>> net = timm.create_model("test_resnet", num_classes=3)
        >>> stages = stage_parameters(net, net.get_classifier())
        >>> len(stages) > 1, sum(len(s) for s in stages) == len(list(net.parameters())) - 2
        (True, True)
    """
    from timm.models import group_parameters

    named = dict(backbone.named_parameters())
    head_ids = {id(p) for p in head.parameters()}
    groups = group_parameters(backbone, backbone.group_matcher(coarse=True))
    stages = [[named[n] for n in names if id(named[n]) not in head_ids] for _, names in sorted(groups.items())]
    return [s for s in stages if s]
