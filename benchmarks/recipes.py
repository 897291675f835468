"""The cost of each training recipe per training step, against the plain step, in one run.

Every row fits SimpleCNN on the bundled digits with a real Trainer for ``--steps`` steps and times the steps
after ``--warmup`` (a callback reads the clock at the first timed batch and at the last). Each row runs
``--repeats`` times, each time beside a run of the plain step (before or after it, alternately), and its ratio is
the median of those paired ratios: on a shared machine the speed drifts between runs by more than a recipe costs.
A row is ``(name, setup)``: ``setup()`` returns the DataModule options and the callbacks of that recipe. Another
set of rows is a function returning such a list, added to ``ROW_SETS``.

The augmentation policies are not a per-step cost of the same training step (the per-sample path runs in loader
workers, beside the step), so they have their own table in the same run: images/s of each batched policy against
torchvision's per sample in ``--policy-workers`` loader workers at ``--policy-size`` (``policies.policy_rows``).
The last lines hold each ratio against its bar (MixUp and CutMix at most 1.05x, EMA at most 1.10x, the batched
policies at least 3x the worker path at 32 px).

Run: ``.venv/bin/python benchmarks/recipes.py`` (``--steps 5 --warmup 1 --repeats 1 --policy-images 128`` for a
smoke run).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import StochasticWeightAveraging

from lightning_cnn import DigitsDataModule, EMAWeightAveraging, SimpleCNN

Setup = Callable[[], tuple[dict[str, Any], list[pl.Callback]]]
Row = tuple[str, Setup]


def recipe_rows() -> list[Row]:
    """The plain step, MixUp, CutMix, both, EMA and SWA (Lightning's ``StochasticWeightAveraging``)."""
    return [
        ("plain", lambda: ({}, [])),
        ("mixup", lambda: ({"mixup_alpha": 0.2}, [])),
        ("cutmix", lambda: ({"cutmix_alpha": 1.0}, [])),
        ("mixup+cutmix", lambda: ({"mixup_alpha": 0.2, "cutmix_alpha": 1.0}, [])),
        ("ema", lambda: ({}, [EMAWeightAveraging(decay=0.99)])),
        # Averages once an epoch (from the second), with its own learning-rate schedule; no bar of its own.
        ("swa", lambda: ({}, [StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1)])),
    ]


#: The most each recipe's training step may cost against the plain step.
STEP_BARS = {"mixup": 1.05, "cutmix": 1.05, "mixup+cutmix": 1.05, "ema": 1.10}
#: The least the batched policies must give against the per-sample worker path (images/s), at 32 px.
POLICY_BAR = 3.0

#: Every set of rows the benchmark runs; the first row of the first set is the baseline.
ROW_SETS: list[Callable[[], list[Row]]] = [recipe_rows]


class _StepClock(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # type: ignore[no-untyped-def]
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # type: ignore[no-untyped-def]
        if trainer.global_step > self.warmup:
            self.end, self.steps = time.perf_counter(), trainer.global_step - self.warmup


def time_per_step(setup: Setup, steps: int, warmup: int, batch_size: int, image_size: int) -> float:
    """Seconds per training step of one recipe (after ``warmup`` steps)."""
    options, callbacks = setup()
    torch.manual_seed(0)
    model = SimpleCNN(log_train_step=False)
    dm = DigitsDataModule(batch_size=batch_size, image_size=image_size, **options)
    clock = _StepClock(warmup)
    with tempfile.TemporaryDirectory() as folder:  # the run's splits.json goes there
        trainer = pl.Trainer(
            accelerator="cpu", max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[*callbacks, clock],
            default_root_dir=folder,
        )  # fmt: skip
        trainer.fit(model, dm)
    return (clock.end - clock.start) / max(clock.steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=110)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10, help="paired runs of each row beside the plain step")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=16, help="image side (digits are upsampled)")
    parser.add_argument("--policy-size", type=int, default=32, help="image side of the policy table")
    parser.add_argument("--policy-images", type=int, default=4096, help="images per policy timing (0: no table)")
    parser.add_argument("--policy-repeats", type=int, default=3, help="best of this many timings of each path")
    parser.add_argument("--policy-workers", type=int, default=2, help="loader workers of the per-sample path")
    args = parser.parse_args()
    rows = [row for make in ROW_SETS for row in make()]
    (base_name, base_setup), others = rows[0], rows[1:]
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    paired: dict[str, list[float]] = {name: [] for name, _ in others}

    def timed(setup: Setup) -> float:
        gc.collect()  # the previous runs' garbage is collected here, not inside the timed steps
        return time_per_step(setup, args.steps, args.warmup, args.batch, args.size)

    for repeat in range(args.repeats):
        # Each row runs right beside a run of the plain step (before it in even repeats, after it in odd ones), and
        # its ratio is taken to that neighbour: the machine's speed drifts from run to run by more than the
        # recipes cost, which a ratio of two separate medians would mix in.
        for name, setup in others:
            if repeat % 2 == 0:
                base, row = timed(base_setup), timed(setup)
            else:
                row, base = timed(setup), timed(base_setup)
            times[base_name].append(base)
            times[name].append(row)
            paired[name].append(row / base)
    print(f"SimpleCNN on digits {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads,")
    print(
        f"{args.repeats} paired runs of {args.steps - args.warmup} timed steps each: ms/step is the median of each"
        f" row's runs, the ratio the median of its runs' ratios to the plain run beside each"
    )
    print("| recipe | ms/step | vs plain |")
    print("|---|---|---|")
    ratios = {base_name: 1.0} | {name: statistics.median(r) for name, r in paired.items()}
    for name, _ in rows:
        print(f"| {name} | {statistics.median(times[name]) * 1000:.2f} | {ratios[name]:.3f}x |")
    bars = [(name, ratios[name], "<=", limit) for name, limit in STEP_BARS.items() if name in ratios]
    if args.policy_images > 0:
        from policies import policy_rows  # beside this script

        print(
            f"\nAugmentation policies, {args.policy_images} random RGB images of {args.policy_size}x{args.policy_size},"
            f" batch 64, best of {args.policy_repeats}: torchvision's per sample in {args.policy_workers} loader"
            " workers against the batched policy in the main process"
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
