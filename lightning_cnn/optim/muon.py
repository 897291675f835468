"""Muon for the hidden 2-D weights and AdamW for the rest, as one optimizer object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["MuonWithAdamW"]


class MuonWithAdamW(Optimizer):
    """Muon for the hidden 2-D weights and AdamW for every other parameter, as one optimizer.

    Both inner optimizers share this object's ``param_groups`` (Muon's groups first) and ``state``, so
    LR schedulers, gradient clipping, ``state_dict`` and Lightning's checkpointing see one optimizer.

    Args:
        muon_params: parameter groups (2-D tensors only) for Muon.
        adamw_params: parameter groups for AdamW.
        lr: learning rate of both.
        muon_options: extra arguments of :class:`torch.optim.Muon`.
        adamw_options: extra arguments of :class:`torch.optim.AdamW`.

    Raises:
        ValueError: for a Muon parameter that is not 2-D.
    """

    def __init__(
        self,
        muon_params: list[dict[str, Any]],
        adamw_params: list[dict[str, Any]],
        lr: float = 1e-3,
        muon_options: Mapping[str, Any] | None = None,
        adamw_options: Mapping[str, Any] | None = None,
    ) -> None:
        for group in muon_params:
            bad = [tuple(p.shape) for p in group["params"] if p.ndim != 2]
            if bad:
                raise ValueError(f"Muon takes only 2-D parameters, but got shapes {bad}.")
        muon_kw = {"adjust_lr_fn": "match_rms_adamw", **(muon_options or {})}
        self.muon = torch.optim.Muon(muon_params, lr=lr, **muon_kw) if muon_params else None
        self.adamw = torch.optim.AdamW(adamw_params, lr=lr, **(adamw_options or {})) if adamw_params else None
        groups = [g for opt in (self.muon, self.adamw) if opt is not None for g in opt.param_groups]
        self._n_muon = len(self.muon.param_groups) if self.muon is not None else 0
        super().__init__(groups, {"lr": lr})
        self._share()

    def _share(self) -> None:
        if self.muon is not None:
            self.muon.param_groups = self.param_groups[: self._n_muon]
            self.muon.state = self.state
        if self.adamw is not None:
            self.adamw.param_groups = self.param_groups[self._n_muon :]
            self.adamw.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._share()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in (self.muon, self.adamw):
            if opt is not None:
                opt.step()
        return loss
