"""Regularizers that drop weights or whole residual branches during training.

DropConnect and stochastic depth are different things and are kept apart here: :class:`DropConnectLinear`
drops individual *weights* of a linear layer (Wan et al., 2013); :class:`StochasticDepth` drops a whole
residual *branch* per sample (Huang et al., 2016), which some libraries call "drop path" or, confusingly,
"drop connect".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_cnn._utils.validation import check_probability

__all__ = ["DropConnectLinear", "StochasticDepth"]


class DropConnectLinear(nn.Linear):
    """A linear layer whose weights are randomly dropped in training (DropConnect).

    In training each weight is kept with probability ``1 - p`` and the kept weights are scaled by
    ``1 / (1 - p)``, so the expected weight equals the stored weight. In evaluation the layer uses the
    stored (expected) weights and is deterministic: it equals :class:`torch.nn.Linear` with the same
    parameters. One mask is drawn per forward call and shared by the batch.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        p: probability of dropping a weight, in ``[0, 1)``.
        bias: whether the layer has a bias (never dropped).

    Shape:
        - Input: ``[*, in_features]``
        - Output: ``[*, out_features]``

    Example:
        >>> layer = DropConnectLinear(4, 2, p=0.5).eval()
        >>> x = torch.randn(3, 4)
        >>> torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        True
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        check_probability("drop_connect", p)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        keep = torch.empty_like(self.weight).bernoulli_(1.0 - self.p)
        return F.linear(x, self.weight * keep / (1.0 - self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class StochasticDepth(nn.Module):
    """Drop a residual branch per sample with probability ``p`` in training; identity in evaluation.

    Kept samples are scaled by ``1 / (1 - p)`` so the expected output equals the evaluation output.

    Args:
        p: probability of dropping the branch, in ``[0, 1)``.

    Shape:
        - Input: ``[B, *]``, the branch output.
        - Output: same shape.

    Example:
        >>> sd = StochasticDepth(0.2).eval()
        >>> x = torch.randn(2, 3, 4, 4)
        >>> torch.equal(sd(x), x)
        True
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        check_probability("stochastic_depth", p)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
