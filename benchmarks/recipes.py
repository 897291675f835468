"""The cost of each training recipe per training step, against the plain step, in one run.

Every row fits SimpleCNN on the bundled digits with a real Trainer for ``--steps`` steps and times the steps
after ``--warmup`` (a callback reads the clock at the first timed batch and at the last), repeated
``--repeats`` times with the rows interleaved; the median time per step of each row is divided by the plain
row's. A row is ``(name, setup)``: ``setup()`` returns the DataModule options and the callbacks of that
recipe. Another set of rows (augmentation policies, ...) is a function returning such a list, added to
``ROW_SETS``.

Run: ``.venv/bin/python benchmarks/recipes.py`` (``--steps 5 --warmup 1 --repeats 1`` for a smoke run).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_cnn import DigitsDataModule, EMAWeightAveraging, SimpleCNN

Setup = Callable[[], tuple[dict[str, Any], list[pl.Callback]]]
Row = tuple[str, Setup]


def recipe_rows() -> list[Row]:
    """The plain step, MixUp, CutMix, both, and EMA."""
    return [
        ("plain", lambda: ({}, [])),
        ("mixup", lambda: ({"mixup_alpha": 0.2}, [])),
        ("cutmix", lambda: ({"cutmix_alpha": 1.0}, [])),
        ("mixup+cutmix", lambda: ({"mixup_alpha": 0.2, "cutmix_alpha": 1.0}, [])),
        ("ema", lambda: ({}, [EMAWeightAveraging(decay=0.99)])),
    ]


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
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=16, help="image side (digits are upsampled)")
    args = parser.parse_args()
    rows = [row for make in ROW_SETS for row in make()]
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _ in range(args.repeats):
        for name, setup in rows:
            times[name].append(time_per_step(setup, args.steps, args.warmup, args.batch, args.size))
    base = statistics.median(times[rows[0][0]])
    print(f"SimpleCNN on digits {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads,")
    print(f"median of {args.repeats} runs of {args.steps - args.warmup} timed steps each, rows interleaved")
    print("| recipe | ms/step | vs plain |")
    print("|---|---|---|")
    for name, _ in rows:
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1000:.2f} | {median / base:.3f}x |")


if __name__ == "__main__":
    main()
