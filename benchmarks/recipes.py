"""The cost of each training recipe per training step against the plain step, measured inside one fit.

Every row fits SimpleCNN on the bundled digits with a real Trainer, and after ``--warmup`` steps with the recipe off
switches it on and off in blocks of ``--block`` steps, in the order on, off, off, on, on, off, ... (a steady drift of
the machine's speed weighs on both sides alike). A step's time runs from the end of the step before it to its own
end: loading, the transfer to the device (where the batch is mixed), forward, backward, the optimizer and the
callbacks (where EMA updates its average). A row's ratio is the median, over its ``--pairs`` pairs of neighbouring
blocks, of the mean step time with the recipe on over the mean with it off. On a shared machine the speed drifts
between separate runs by more than a recipe costs; the blocks of one fit sit seconds apart. The ``a/a`` row
switches nothing: how far its ratio lands from 1.0 is the method's own noise.

A row is ``(name, setup)``: ``setup()`` returns the DataModule options, the callbacks and ``switch(trainer, on)``,
which turns the recipe on or off before the next step. Another set of rows is a function returning such a list,
added to ``ROW_SETS``. Lightning's ``StochasticWeightAveraging`` has no row: it averages once an epoch, not at every
step (and adds one pass over the training data at the end, to recompute BatchNorm statistics).

The augmentation policies are not a per-step cost of the same training step (the per-sample path runs in loader
workers, beside the step), so they have their own table in the same run: images/s of each batched policy against
torchvision's per sample in ``--policy-workers`` loader workers at ``--policy-size`` (``policies.policy_rows``).
The last lines hold each ratio against its bar (MixUp and CutMix at most 1.05x, EMA at most 1.10x, the batched
policies at least 3x the worker path at 32 px).

Run: ``.venv/bin/python benchmarks/recipes.py`` (``--warmup 1 --block 1 --pairs 1 --policy-images 128`` for a smoke
run).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_cnn import DigitsDataModule, EMAWeightAveraging, SimpleCNN
from lightning_cnn.augment.mix import BatchMix

Switch = Callable[[pl.Trainer, bool], None]
Setup = Callable[[], tuple[dict[str, Any], list[pl.Callback], Switch]]
Row = tuple[str, Setup]


def _nothing() -> tuple[dict[str, Any], list[pl.Callback], Switch]:
    return {}, [], lambda trainer, on: None


def _mixing(**options: float) -> Setup:
    """A DataModule that mixes with ``options``; off, its mixing is replaced by one that mixes nothing."""

    def setup() -> tuple[dict[str, Any], list[pl.Callback], Switch]:
        kept: dict[bool, BatchMix] = {False: BatchMix()}  # off: a mixing that mixes nothing (hard labels, as plain)

        def switch(trainer: pl.Trainer, on: bool) -> None:
            dm = trainer.datamodule  # type: ignore[attr-defined]
            kept.setdefault(True, dm.mixing)
            dm.mixing = kept[on]

        return dict(options), [], switch

    return setup


def _ema() -> tuple[dict[str, Any], list[pl.Callback], Switch]:
    """EMAWeightAveraging (decay 0.99); off, its update after each step is skipped."""
    ema = EMAWeightAveraging(decay=0.99)
    update, state = ema.on_train_batch_end, {"on": False}

    def gated(*args: Any, **kwargs: Any) -> None:
        if state["on"]:
            update(*args, **kwargs)

    ema.on_train_batch_end = gated  # type: ignore[method-assign]
    return {}, [ema], lambda trainer, on: state.update(on=on)


def recipe_rows() -> list[Row]:
    """The a/a row (nothing switched), MixUp, CutMix, both, and EMA."""
    return [
        ("a/a", _nothing),
        ("mixup", _mixing(mixup_alpha=0.2)),
        ("cutmix", _mixing(cutmix_alpha=1.0)),
        ("mixup+cutmix", _mixing(mixup_alpha=0.2, cutmix_alpha=1.0)),
        ("ema", _ema),
    ]


#: The most each recipe's training step may cost against the plain step.
STEP_BARS = {"mixup": 1.05, "cutmix": 1.05, "mixup+cutmix": 1.05, "ema": 1.10}
#: The least the batched policies must give against the per-sample worker path (images/s), at 32 px.
POLICY_BAR = 3.0

#: Every set of rows the benchmark runs.
ROW_SETS: list[Callable[[], list[Row]]] = [recipe_rows]


def _is_on(block: int) -> bool:
    """Blocks on, off, off, on, on, off, off, on, ...: each pair of blocks holds one of each."""
    return block % 4 in (0, 3)


class _Interleave(pl.Callback):
    """Times every step and switches the recipe on and off in blocks (see the module's docstring)."""

    def __init__(self, warmup: int, block: int, switch: Switch) -> None:
        self.warmup, self.block, self.switch = warmup, block, switch
        self.blocks: list[tuple[bool, list[float]]] = []
        self.last = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.switch(trainer, False)
        self.last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        done = trainer.global_step  # steps done, this one included
        if done > self.warmup:
            self.blocks[-1][1].append(now - self.last)
        upcoming = done - self.warmup  # the next step's index among the timed ones
        if upcoming >= 0 and upcoming % self.block == 0:  # a new block: switch before its first step
            self.blocks.append((_is_on(upcoming // self.block), []))
            self.switch(trainer, self.blocks[-1][0])
        self.last = time.perf_counter()

    def ratios(self) -> list[float]:
        """Per pair of neighbouring blocks: mean step time on / mean step time off."""
        pairs = zip(self.blocks[0::2], self.blocks[1::2], strict=False)
        out = []
        for (first_on, first), (_, second) in pairs:
            on, off = (first, second) if first_on else (second, first)
            if on and off:
                out.append(statistics.fmean(on) / statistics.fmean(off))
        return out

    def step_times(self, on: bool) -> list[float]:
        return [t for is_on, times in self.blocks if is_on == on for t in times]


def measure(setup: Setup, warmup: int, block: int, pairs: int, batch_size: int, image_size: int) -> _Interleave:
    """One fit with the recipe switched on and off; the clock holds the step times and the paired ratios."""
    options, callbacks, switch = setup()
    torch.manual_seed(0)
    model = SimpleCNN(log_train_step=False)
    dm = DigitsDataModule(batch_size=batch_size, image_size=image_size, **options)
    clock = _Interleave(warmup, block, switch)
    with tempfile.TemporaryDirectory() as folder:  # the run's splits.json goes there
        trainer = pl.Trainer(
            accelerator="cpu", max_steps=warmup + 2 * pairs * block, limit_val_batches=0, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            callbacks=[*callbacks, clock], default_root_dir=folder,
        )  # fmt: skip
        trainer.fit(model, dm)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warmup", type=int, default=20, help="steps before the first block (recipe off)")
    parser.add_argument("--block", type=int, default=10, help="steps per block")
    parser.add_argument("--pairs", type=int, default=60, help="pairs of blocks (one on, one off) per row")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=16, help="image side (digits are upsampled)")
    parser.add_argument("--policy-size", type=int, default=32, help="image side of the policy table")
    parser.add_argument("--policy-images", type=int, default=4096, help="images per policy timing (0: no table)")
    parser.add_argument("--policy-repeats", type=int, default=3, help="best of this many timings of each path")
    parser.add_argument("--policy-workers", type=int, default=2, help="loader workers of the per-sample path")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no "GPU available" lines and tips per fit
    rows = [row for make in ROW_SETS for row in make()]
    print(f"SimpleCNN on digits {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads;")
    print(
        f"each row one fit: {args.warmup} warm-up steps, then {args.pairs} pairs of {args.block}-step blocks with the"
        " recipe on and off; ms/step: median step with it on and off; ratio: median over the pairs of mean on / mean"
        " off (min-max over the pairs)"
    )
    print("| recipe | ms/step on | ms/step off | on / off | pairs min-max |")
    print("|---|---|---|---|---|")
    ratios = {}
    for name, setup in rows:
        clock = measure(setup, args.warmup, args.block, args.pairs, args.batch, args.size)
        paired = clock.ratios()
        ratios[name] = statistics.median(paired)
        on, off = statistics.median(clock.step_times(True)), statistics.median(clock.step_times(False))
        print(
            f"| {name} | {on * 1000:.2f} | {off * 1000:.2f} | {ratios[name]:.3f}x |"
            f" {min(paired):.3f}-{max(paired):.3f} |"
        )
    bars = [(name, ratios[name], "<=", limit) for name, limit in STEP_BARS.items() if name in ratios]
    if args.policy_images > 0:
        from policies import policy_rows  # beside this script

        print(
            f"\nAugmentation policies, {args.policy_images} random RGB images of {args.policy_size}x{args.policy_size},"
            f" batch 64, best of {args.policy_repeats}: torchvision's per sample in {args.policy_workers} loader"
            f" workers against the batched policy in the main process ({torch.get_num_threads()} threads)"
        )
        print("| policy | size | workers img/s | batched img/s | batched / workers |")
        print("|---|---|---|---|---|")
        size, images, workers = args.policy_size, args.policy_images, args.policy_workers
        for row in policy_rows(size, images, 64, workers, args.policy_repeats):
            print(
                f"| {row['policy']} | {row['size']} | {row['workers_img_s']:.0f} | {row['batched_img_s']:.0f}"
                f" | {row['ratio']:.2f}x |"
            )
            bars.append((f"batched {row['policy']} at {row['size']} px", row["ratio"], ">=", POLICY_BAR))
    print()
    for name, ratio, kind, limit in bars:
        held = ratio <= limit if kind == "<=" else ratio >= limit
        print(f"bar {name}: {ratio:.3f}x {kind} {limit}x {'met' if held else 'NOT met'}")


if __name__ == "__main__":
    main()
