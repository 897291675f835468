"""An exponential moving average of the weights (EMA): Lightning's, built once the module has set itself up.

Lightning internals used (no public API gives them): ``WeightAveraging._average_model``, ``_device``,
``_use_buffers``, ``_kwargs``, ``_latest_update_step`` and ``_latest_update_epoch``, the averaged module and how it
is built and updated.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging as _LightningEMA
from torch.optim.swa_utils import AveragedModel
from typing_extensions import override

from lightning_cnn._utils.validation import check_positive, check_range

__all__ = ["EMAWeightAveraging", "FloatEMA"]


class FloatEMA:
    """The EMA update ``decay * average + (1 - decay) * current`` for floats (others copied), of a tensor or a list.

    Integer buffers (BatchNorm's ``num_batches_tracked``, a model's encoded input contract) would be truncated by
    the float formula; they take the current value.

    Example:
        >>> ema = FloatEMA(0.75)
        >>> ema(torch.tensor([1.0]), torch.tensor([5.0]), torch.tensor(1)).tolist()
        [2.0]
        >>> ema(torch.tensor([7], dtype=torch.uint8), torch.tensor([9], dtype=torch.uint8), torch.tensor(1)).tolist()
        [9]
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, average: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        if not (average.is_floating_point() or average.is_complex()):
            return current
        return self.decay * average + (1 - self.decay) * current

    def update_all(
        self, averages: list[torch.Tensor], currents: list[torch.Tensor], num_averaged: torch.Tensor
    ) -> None:
        """The same update in place over tensors of one dtype and device (``AveragedModel``'s ``multi_avg_fn``).

        One fused ``foreach`` kernel per step for the whole model instead of three operations per tensor.

        Example:
            >>> ema, average = FloatEMA(0.75), [torch.tensor([1.0]), torch.tensor([3.0])]
            >>> ema.update_all(average, [torch.tensor([5.0]), torch.tensor([3.0])], torch.tensor(1))
            >>> [t.tolist() for t in average]
            [[2.0], [3.0]]
        """
        # torch's _foreach functions are private (docs/architecture.md lists them); its optimizers use them too.
        if averages and (averages[0].is_floating_point() or averages[0].is_complex()):
            torch._foreach_mul_(averages, self.decay)
            torch._foreach_add_(averages, currents, alpha=1 - self.decay)
        else:
            torch._foreach_copy_(averages, currents)


class EMAWeightAveraging(_LightningEMA):
    """Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging`, for modules that set themselves up.

    Every option works as in Lightning's: after each optimizer step the averaged copy moves toward the weights,
    ``average = decay * average + (1 - decay) * weights``; validation runs on the averaged weights (they are swapped
    in for it), every checkpoint's ``state_dict`` holds them (the training weights go to ``current_model_state``,
    from which a resumed run continues), and when ``fit`` ends the module keeps them. Two things differ:

    - The averaged copy is made when ``fit`` starts (or when a checkpoint is restored), after the module's own
      ``setup``. Lightning's copies the module in the callbacks' ``setup``, which Lightning runs before the
      module's: a module that learns buffers there (a :class:`~lightning_cnn.ClassifierModule` learns its input
      contract, normalization statistics and class names) would be averaged into a copy of another shape.
    - Only floating-point tensors are averaged; integer buffers are copied (Lightning's formula would truncate
      them: BatchNorm's batch counts, the encoded input contract).

    With :class:`~lightning_cnn.SnapshotBest` and :class:`~lightning_cnn.EarlyStopping` ``(restore_best_weights=
    True)``, "best" is the best validation of the averaged weights: ``best.ckpt`` and the restored weights are the
    averaged weights of that epoch, whatever the order of the callbacks, so ``test``,
    :class:`~lightning_cnn.TestTimeAugmentation` and :class:`~lightning_cnn.EnsembleEvaluation` (which reads each
    member's ``state_dict``) evaluate those. Under DDP each process keeps its own copy; the weights are the same
    on every process after each step, so the copies are too. On the command line ``--trainer.callbacks+=
    EMAWeightAveraging`` means this one.

    Args:
        device: where the averaged copy lives (``None``: the module's device; ``"cpu"`` spares device memory).
        use_buffers: average the buffers too (BatchNorm's running statistics); ``False`` copies them.
        decay: weight of the average at each update, in ``[0, 1]``.
        update_every_n_steps: update after every n-th optimizer step.
        update_starting_at_step: first optimizer step (0-based) that updates (``None``: the first).
        update_starting_at_epoch: also update at the end of every epoch from this one (``None``: never).

    Raises:
        ValueError: for a ``decay`` outside ``[0, 1]`` or ``update_every_n_steps`` below 1.

    Example:
        >>> ema = EMAWeightAveraging(decay=0.99)
        >>> ema.decay, ema.state_dict()
        (0.99, {'latest_update_step': 0, 'latest_update_epoch': -1})
    """

    def __init__(
        self,
        device: str | None = None,
        use_buffers: bool = True,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
    ) -> None:
        check_range("decay", decay, 0, 1)
        check_positive("update_every_n_steps", update_every_n_steps, integer=True)
        super().__init__(
            device=device,
            use_buffers=use_buffers,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
        )
        self.decay = float(decay)
        self._kwargs.pop("avg_fn", None)  # AveragedModel takes one of the two
        self._kwargs["multi_avg_fn"] = FloatEMA(self.decay).update_all

    def _build_average(self, pl_module: pl.LightningModule) -> None:
        device = self._device or pl_module.device
        self._average_model = AveragedModel(pl_module, device=device, use_buffers=self._use_buffers, **self._kwargs)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._average_model = None  # built after the module's own setup: on_load_checkpoint or on_fit_start

    @override
    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == "fit" and self._average_model is None:
            self._build_average(pl_module)
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._average_model is None:
            self._build_average(pl_module)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # The module keeps the average (or the best one a snapshot callback restored): a later validate() or test()
        # of this Trainer evaluates the module, not a swap with this copy.
        if stage == "fit":
            self._average_model = None

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "latest_update_epoch": self._latest_update_epoch}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._latest_update_epoch = int(state_dict.get("latest_update_epoch", -1))
