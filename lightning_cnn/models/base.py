"""The classifier base: steps, loss, optimizer, scheduler and metrics shared by every model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, Metric

from lightning_cnn._utils.batch import split_batch
from lightning_cnn._utils.distributed import gather
from lightning_cnn._utils.validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_probability,
    check_weights,
)
from lightning_cnn.losses import LOSS_NAMES, LossName, build_loss
from lightning_cnn.models.contract import InputContract, OwnsInputContract
from lightning_cnn.models.metrics import eval_metrics, train_accuracy
from lightning_cnn.models.optimization import ConfiguresOptimizers
from lightning_cnn.models.task import LearnsTask
from lightning_cnn.optim import OPTIMIZER_NAMES, SCHEDULER_NAMES, OptimizerName, SchedulerName

__all__ = ["ClassifierModule"]

Stage = Literal["train", "val", "test"]


class ClassifierModule(ConfiguresOptimizers, LearnsTask, OwnsInputContract, pl.LightningModule):
    """A LightningModule for image classification: subclass it and give a network.

    A subclass assigns ``self.net`` (any ``nn.Module`` mapping ``[B, C, H, W]`` to logits
    ``[B, num_classes]``) or overrides :meth:`forward`. It gets the training, validation, test and
    predict steps, the loss, optimizer and scheduler by name, and torchmetrics metrics, synced across
    ranks and logged at epoch end as ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``,
    ``val/f1``, ``val/nll``, ``val/ece`` (and ``test/...`` alike). ``predict_step`` returns
    probabilities. Multi-label data (a 0/1 label matrix) makes it multi-label (:mod:`~lightning_cnn.models.task`):
    sigmoid loss, ``val/acc``, ``val/f1``, ``val/map``, ``val/exact_match``, per-label probabilities.
    The module owns its input contract (:class:`~lightning_cnn.models.contract.OwnsInputContract`):
    learned from the DataModule when fitting and saved in its ``state_dict``, it makes ``forward`` take raw
    ``[0, 1]`` images. Hyperparameters are saved, so ``load_from_checkpoint`` rebuilds the module. A subclass that
    needs other parameter groups (per-group learning rates) overrides :meth:`create_optimizer`; the scheduler is
    built from its groups. Schedulers take the length of training from the Trainer (``max_epochs`` or
    ``max_steps``, ``limit_train_batches`` and ``accumulate_grad_batches`` included).

    Args:
        num_classes: number of classes.
        loss: a loss name, or a ``{name: weight}`` mapping for a weighted mixture.
        label_smoothing: label smoothing of the cross-entropies.
        class_weights: per-class weights for ``"weighted_cross_entropy"``, or ``"balanced"`` to take
            them from the DataModule's ``class_weights`` (inverse class frequency of the training split).
        pos_weight: positive weight(s) of ``"sigmoid_cross_entropy"``.
        huber_delta: ``delta`` of ``"pseudo_huber"``.
        optimizer: an optimizer by name: :mod:`torch.optim`'s, or timm's (``"lion"``, ``"timm:adamw"``, ...).
        lr: learning rate; ``None`` picks a default that suits the optimizer.
        weight_decay: weight decay of weights (biases and norms get none unless ``decay_all``).
        decay_all: apply weight decay to biases and normalization parameters too.
        optimizer_options: further optimizer arguments (``momentum``, ``betas``, ``nesterov``, ...).
        scheduler: a learning-rate scheduler by name, or ``None``.
        scheduler_options: further scheduler arguments (``step_size``, ``gamma``, ...).
        warmup_epochs: linear warm-up epochs in front of the scheduler.
        top_k: also report top-k accuracy when ``1 < top_k < num_classes`` (an int >= 1).
        channels_last: store the convolution weights in channels-last memory format, so convolutions
            run in NHWC (see ``docs/performance.md``); ``None`` (auto): on when the Trainer runs on the CPU,
            where it was measured faster, off elsewhere and with ``optimizer="lbfgs"``. Applied in :meth:`setup`.
        compile: compile the network with :func:`torch.compile` (``self.net``, in place, so checkpoint keys
            do not change) when training starts; costs seconds to minutes of compilation.
        log_train_step: also log each step's loss as ``train/loss_step`` (and show it in the progress bar);
            ``False`` spares that per-step logging work (the lean preset). The epoch's mean is ``train/loss``
            either way.

    Raises:
        ValueError: for an unknown loss, optimizer or scheduler name, an out-of-range number (``label_smoothing``,
            ``huber_delta``, ``top_k``, ...), ``class_weights`` or ``pos_weight`` of another length than
            ``num_classes``, or ``channels_last=True`` with ``optimizer="lbfgs"``.
        TypeError: for a ``channels_last``, ``compile`` or ``log_train_step`` that is not a bool.

    Example:
        >>> class Tiny(ClassifierModule):
        ...     def __init__(self, num_classes: int = 10, **kwargs):
        ...         super().__init__(num_classes, **kwargs)
        ...         self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
        >>> Tiny(optimizer="sgd")(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    net: nn.Module
    normalizes_inputs = True  # forward below normalizes raw images (a subclass's own forward: see OwnsInputContract)

    def __init__(
        self,
        num_classes: int = 10,
        loss: LossName | dict[str, float] = "cross_entropy",
        label_smoothing: float = 0.0,
        class_weights: list[float] | Literal["balanced"] | None = None,
        pos_weight: float | list[float] | None = None,
        huber_delta: float = 1.0,
        optimizer: OptimizerName = "adamw",
        lr: float | None = None,
        weight_decay: float = 0.0,
        decay_all: bool = False,
        optimizer_options: dict[str, Any] | None = None,
        scheduler: SchedulerName | None = None,
        scheduler_options: dict[str, Any] | None = None,
        warmup_epochs: int = 0,
        top_k: int = 5,
        channels_last: bool | None = None,
        compile: bool = False,
        log_train_step: bool = True,
    ) -> None:
        super().__init__()
        check_bool("compile", compile)
        check_bool("log_train_step", log_train_step)
        check_bool("channels_last", channels_last, optional=True)
        if channels_last and optimizer == "lbfgs":
            raise ValueError(
                "Expected channels_last to be False or None with optimizer='lbfgs' (LBFGS flattens gradients"
                " with .view(), which channels-last convolution weights do not allow), but got True."
            )
        check_int("num_classes", num_classes, 2)
        check_choice("optimizer", optimizer, OPTIMIZER_NAMES)
        if scheduler is not None:
            check_choice("scheduler", scheduler, SCHEDULER_NAMES)
        if lr is not None:
            check_positive("lr", lr, finite=True)
        check_positive("weight_decay", weight_decay, allow_zero=True, finite=True)
        check_positive("warmup_epochs", warmup_epochs, allow_zero=True)
        check_int("top_k", top_k, 1)
        # Every loss option is checked here, also when "balanced" weights make the loss wait for setup().
        check_probability("label_smoothing", label_smoothing)
        check_positive("huber_delta", huber_delta)
        if isinstance(class_weights, str):
            check_choice("class_weights", class_weights, ("balanced",))
        else:
            check_weights("class_weights", class_weights, num_classes)
        check_weights("pos_weight", pos_weight, num_classes, scalar=True)
        self.save_hyperparameters()
        self._loss_options: dict[str, Any] = {
            "label_smoothing": label_smoothing,
            "pos_weight": pos_weight,
            "delta": huber_delta,
            "num_classes": num_classes,
        }
        names = list(loss) if isinstance(loss, Mapping) else [loss]
        for name in names:
            check_choice("loss", name, LOSS_NAMES)
        # "balanced" weights need the training labels: the loss is then built in setup().
        self.criterion: nn.Module | None = None
        if class_weights != "balanced":
            self.criterion = build_loss(loss, class_weights=class_weights, **self._loss_options)
        self.train_acc = train_accuracy(num_classes)  # multiclass; adopt_task() rebuilds the metrics for multi-label
        # A metric, not a tensor: the epoch's train/loss is then averaged over every rank's samples.
        self.train_loss = MeanMetric()
        self.val_metrics = eval_metrics(num_classes, top_k)
        self.test_metrics = eval_metrics(num_classes, top_k)
        self._resumed_metric_states: dict[str, Any] | None = None  # from a mid-epoch checkpoint, for on_train_start
        self.input_contract = InputContract()  # channels, size, normalization, class names: learned in setup

    # ------------------------------------------------------------------ network
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``[B, num_classes]`` for raw images ``[B, C, H, W]`` (normalized here, as in training)."""
        net = getattr(self, "net", None)
        if net is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no network: assign self.net in __init__ or override forward()."
            )
        return net(self.normalize_inputs(x))

    # ------------------------------------------------------------------ setup
    def uses_channels_last(self) -> bool:
        """Whether :meth:`setup` puts the weights in channels-last format (``channels_last``, or auto on the CPU)."""
        flag = self.hparams.get("channels_last")
        if flag is not None:
            return bool(flag)
        if self.hparams.get("optimizer") == "lbfgs":
            return False
        # Private: `self.trainer` raises without a Trainer, and Lightning has no public "is one attached" check.
        trainer = self._trainer
        return trainer is not None and type(trainer.accelerator).__name__ == "CPUAccelerator"

    def _apply_fast_path(self) -> None:
        self._channels_last = self.uses_channels_last()
        if self._channels_last:
            # Weights and inputs both channels-last: measured 1.48x the plain step on the CPU, weights alone
            # 1.32x (SimpleCNN, batch 256, 32x32; docs/performance.md).
            self.to(memory_format=torch.channels_last)
        if self.hparams.get("compile") and not getattr(self, "_compiled", False):
            net = getattr(self, "net", None)
            (net if isinstance(net, nn.Module) else self).compile()
            self._compiled = True

    def setup(self, stage: str) -> None:
        self._apply_fast_path()
        self.learn_input_contract(stage)
        self.adopt_task()  # multi-label data (or checkpoint): sigmoid loss and multi-label metrics (models/task.py)
        # Predicting computes no loss: "balanced" weights are needed only to fit, validate and test.
        if self.criterion is None and stage != "predict":
            dm = getattr(self.trainer, "datamodule", None)
            weights = getattr(dm, "class_weights", None)
            if weights is None:
                raise ValueError(
                    "class_weights='balanced' takes the weights from the DataModule's `class_weights`, but"
                    f" the trainer has {'no DataModule' if dm is None else type(dm).__name__ + ' without them'};"
                    " pass the weights as a list instead."
                )
            self.criterion = build_loss(
                self.hparams["loss"], class_weights=[float(w) for w in weights], **self._loss_options
            ).to(self.device)

    # ------------------------------------------------------------------ steps
    def _unpack(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Any other object is the input itself (a subclass's own batch type), where split_batch would refuse it.
        x, y = split_batch(batch) if isinstance(batch, (tuple, list, Mapping, torch.Tensor)) else (batch, None)
        # Training inputs only: evaluation runs in inference mode, where a converted copy would be an inference
        # tensor that subclasses' caches cannot version; channels-last weights alone carry evaluation.
        if self.training and getattr(self, "_channels_last", False) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert self.criterion is not None  # built in __init__ or setup
        return self.criterion(logits, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = self._unpack(batch)
        if y is None:
            raise ValueError("training_step needs labelled batches (x, y), but the batch has no labels.")
        logits = self(x)
        loss = self._loss(logits, y)
        labels = self.metric_target(y)
        self.train_acc.update(self.probabilities(logits.detach()), labels)
        if self.hparams.get("log_train_step", True):
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        # The epoch's mean is always `train/loss`, whether or not the steps are logged.
        self.train_loss.update(loss.detach(), x.shape[0])
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, batch: Any, stage: Stage) -> torch.Tensor:
        x, y = self._unpack(batch)
        if y is None:
            raise ValueError(f"{stage} needs labelled batches (x, y), but the batch has no labels.")
        logits = self(x)
        metrics: dict[str, Metric] = dict(self.val_metrics if stage == "val" else self.test_metrics)  # type: ignore[arg-type]
        labels = self.metric_target(y)
        loss = self._loss(logits, y)
        metrics["loss"].update(loss.detach(), weight=x.shape[0])
        if "nll" in metrics:  # multiclass only
            metrics["nll"].update(F.cross_entropy(logits.detach().float(), labels, reduction="none"))
        probs = self.probabilities(logits.detach())
        for name, metric in metrics.items():
            if name not in ("loss", "nll"):
                metric.update(probs, labels)
        for name, metric in metrics.items():  # val/loss and val/acc show in the progress bar
            bar = stage == "val" and name in ("loss", "acc")
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=bar)
        return logits

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Return class probabilities ``[B, num_classes]`` (per-label sigmoid probabilities for a multi-label task)."""
        x, _ = self._unpack(batch)
        return self.probabilities(self(x))

    # ------------------------------------------------------------------ checkpoints
    def _train_metrics(self) -> dict[str, Metric]:
        return {"train_loss": self.train_loss, "train_acc": self.train_acc}

    def _mid_epoch(self) -> bool:
        trainer = self._trainer  # private, as in uses_channels_last: None without a Trainer
        # During fit, in the training loop or in a validation run inside the epoch (val_check_interval < 1).
        if trainer is None or trainer.state.fn != "fit" or trainer.sanity_checking:
            return False
        progress = trainer.fit_loop.epoch_loop.batch_progress
        return 0 < progress.current.ready < trainer.num_training_batches and not progress.is_last_batch

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the running sums of the epoch's training metrics in a checkpoint written in the middle of an epoch.

        A run resumed from it then logs the same ``train/loss`` and ``train/acc`` for that epoch as an
        uninterrupted run. The sums are added over the ranks (every rank saves, so this is a collective), and a
        resumed run puts them on rank 0, so a resume with another number of processes still adds up.
        """
        if not self._mid_epoch():
            return
        trainer = self.trainer
        states: dict[str, dict[str, torch.Tensor]] = {}
        for name, metric in self._train_metrics().items():
            # Private: torchmetrics keeps each state's reduction only in `_reductions` (no public accessor).
            if not all(getattr(fx, "__name__", "") == "dim_zero_sum" for fx in metric._reductions.values()):
                continue  # only sums can be added over ranks and continued
            state = {}
            for key, value in metric.metric_state.items():
                assert isinstance(value, torch.Tensor)
                if trainer.world_size > 1:
                    value = gather(self, value).sum(0)
                state[key] = value.detach().cpu().clone()
            states[name] = state
        checkpoint["train_metric_states"] = {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "states": states,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_metric_states = checkpoint.get("train_metric_states")

    def on_fit_start(self) -> None:
        # validate/test run under inference_mode, where torchmetrics' reset makes inference tensors that validation
        # inside fit (under no_grad) may not update in place: validate-then-fit would crash. Reset them out here.
        for metric in (m for m in self.modules() if isinstance(m, Metric)):
            states = [t for v in metric.metric_state.values() for t in (v if isinstance(v, list) else [v])]
            if any(torch.is_tensor(t) and t.is_inference() for t in states):
                metric.reset()

    def on_train_start(self) -> None:
        trainer = self.trainer
        # A scheduler sized by trainer.estimated_stepping_batches makes Lightning build the training loader before
        # the checkpoint is restored, and then it never hands the loader its saved place in the epoch: hand it now,
        # before the first batch is drawn (without a saved place this does nothing).
        # Private: Lightning has no public hook that hands a loader built this early its saved place.
        trainer.fit_loop._load_combined_loader_states()
        saved, self._resumed_metric_states = self._resumed_metric_states, None
        # Only when this fit resumes at the very step the sums were saved at (not a new fit from loaded weights).
        if not saved or (saved["epoch"], saved["global_step"]) != (trainer.current_epoch, trainer.global_step):
            return
        if not trainer.is_global_zero:
            return  # the totals live on rank 0; the other ranks start from zero and the epoch's sync adds them up
        metrics = self._train_metrics()
        for name, state in saved["states"].items():
            metric = metrics.get(name)
            if metric is None or set(state) != set(metric.metric_state):
                continue
            for key, value in state.items():
                setattr(metric, key, value.to(device=self.device, dtype=getattr(metric, key).dtype))
            # Private: state set by hand must count as updated and drop a cached result; torchmetrics offers only
            # merge_state, which adds to the state and refuses metrics with full_state_update.
            metric._update_count = max(metric._update_count, 1)
            metric._computed = None
