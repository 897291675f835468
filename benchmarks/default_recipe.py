"""The default recipe of ``lightning-cnn`` (no arguments), chosen by measurement: candidates on digits, seeds 0-2.

Each candidate is a list of ``lightning-cnn fit`` options, run through the command line's own class
(:class:`~lightning_cnn.cli.CNNCli`: the same parser, defaults, callbacks and test of the best checkpoint as the
console script) for every seed, all in this one process. Printed per seed: the test accuracy of the best
checkpoint and the seconds of ``fit`` (training and its validation, not the test); then the mean of each, and the
ratio of each candidate's mean seconds to the first candidate's (today's ``DEFAULT_RUN``). The goal: mean test
accuracy >= 0.996 with <= 4 s of training. Runs write into a temporary folder, which is removed.

    python benchmarks/default_recipe.py                  # every candidate, seeds 0 1 2
    python benchmarks/default_recipe.py --only default   # one candidate
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightning_cnn.cli import DEFAULT_RUN, CNNCli

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
FIT = ["fit", "--test_after_fit", "true"]
# Today's DEFAULT_RUN before this measurement, kept as the baseline whatever DEFAULT_RUN now is.
BASELINE = [
    "--data.augment", "light", "--data.augment_on", "auto", "--model.scheduler", "cosine", "--trainer.max_epochs", "30",
]  # fmt: skip
LIGHT = ["--data.augment", "light", "--data.augment_on", "auto"]

CANDIDATES: dict[str, list[str]] = {
    "baseline-30ep-cosine": BASELINE,
    "default-now": [a for a in DEFAULT_RUN if a not in FIT],
    "15ep-cosine": [*LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "15"],
    "12ep-cosine": [*LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "12"],
    "10ep-cosine": [*LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "10"],
    "10ep-one_cycle": [*LIGHT, "--model.scheduler", "one_cycle", "--trainer.max_epochs", "10"],
    "15ep-cosine-noval": [
        *LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "15", "--data.val_fraction", "0",
    ],
    "12ep-cosine-noval-resident": [
        *LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "12", "--data.val_fraction", "0",
        "--data.device_resident", "true",
    ],
    "15ep-cosine-b128-lr2e-3": [
        *LIGHT, "--model.scheduler", "cosine", "--trainer.max_epochs", "15", "--data.batch_size", "128",
        "--model.lr", "0.002",
    ],
}  # fmt: skip


class _TimedCli(CNNCli):
    """The command line, keeping the seconds of ``fit`` (before the test that ``--test_after_fit`` adds)."""

    fit_seconds: float = float("nan")

    def before_fit(self) -> None:
        super().before_fit()
        self._started = time.perf_counter()

    def after_fit(self) -> None:
        self.fit_seconds = time.perf_counter() - self._started
        super().after_fit()


def run(options: list[str], seed: int, extra: list[str]) -> tuple[float, float]:
    """Test accuracy and fit seconds of one candidate with one seed (``--seed_everything`` seeds it all)."""
    args = [*FIT, *options, "--seed_everything", str(seed), "--data.split_seed", "0", *QUIET, *extra]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli = _TimedCli(args=args)
    results: Any = cli.test_results
    return float(results[0]["test/acc"]), cli.fit_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), help="candidates to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="one epoch of 3 batches per run (a smoke test)")
    args = parser.parse_args()
    extra = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3"] if args.quick else []
    names = args.only or [n for n in CANDIDATES if n != "default-now" or CANDIDATES[n] != BASELINE]
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    rows = []
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # the runs' folders go here
        try:
            for name in names:
                accs, secs = [], []
                for seed in args.seeds:
                    acc, sec = run(CANDIDATES[name], seed, extra)
                    accs.append(acc)
                    secs.append(sec)
                    print(f"{name:28s} seed {seed}: test/acc {acc:.4f}  fit {sec:6.2f} s", flush=True)
                rows.append((name, statistics.mean(accs), statistics.mean(secs), min(accs)))
        finally:
            os.chdir(here)
    base = rows[0][2]
    print(f"\n| recipe | mean test acc | min test acc | mean fit s | s / {rows[0][0]} |")
    print("|---|---|---|---|---|")
    for name, acc, sec, low in rows:
        print(f"| {name} | {acc:.4f} | {low:.4f} | {sec:.2f} | {sec / base:.2f}x |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
