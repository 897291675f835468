"""LBFGS with weight decay as an L2 term of its objective."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["L2LBFGS"]


class L2LBFGS(torch.optim.LBFGS):
    """LBFGS whose objective adds an L2 penalty ``l2 / 2 * ||w||^2`` on the given parameters.

    :class:`torch.optim.LBFGS` has no weight decay. Here ``weight_decay`` means what it means for SGD: an L2
    term in the objective, whose value and gradient LBFGS's line search sees. Without ``l2`` it is plain LBFGS.

    Example:
        >>> layer = nn.Linear(3, 1, bias=False)
        >>> opt = L2LBFGS(layer.parameters(), l2=1.0, l2_params=[layer.weight], line_search_fn="strong_wolfe")
        >>> x, y = torch.randn(64, 3), torch.zeros(64, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (layer(x) - y).pow(2).mean()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> bool(layer.weight.abs().max() < 1e-4)  # the penalty pulls the weights to the optimum 0
        True
    """

    def __init__(
        self, params: Iterable[nn.Parameter], l2: float = 0.0, l2_params: Iterable[nn.Parameter] = (), **kwargs: Any
    ) -> None:
        super().__init__(params, **kwargs)
        self.l2 = l2
        self._l2_params = list(l2_params)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        if not self.l2 or not self._l2_params:
            return super().step(closure)

        def penalized() -> Any:
            loss = closure()
            penalty = torch.zeros((), device=self._l2_params[0].device)
            for p in self._l2_params:
                penalty += 0.5 * self.l2 * p.pow(2).sum()
                if p.grad is not None:
                    p.grad.add_(p, alpha=self.l2)
            return loss + penalty

        return super().step(penalized)
