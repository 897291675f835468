"""The parser of ``lightning-cnn``: the models and DataModules it names, its help epilog, its one-sentence errors."""

from __future__ import annotations

import inspect
import sys
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from lightning_cnn._utils.command_line import explain_parser_error
from lightning_cnn.data import (
    ArrayDataModule,
    CSVImageDataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    StreamingDataModule,
    TorchvisionDataModule,
)
from lightning_cnn.models import ClassifierModule, SimpleCNN, TransferClassifier

__all__ = ["DATA", "MODELS", "CNNParser", "catalogue"]

#: The models and DataModules ``--model`` and ``--data`` offer by short name (their own subclasses by import path).
MODELS: tuple[type, ...] = (SimpleCNN, TransferClassifier)
DATA: tuple[type, ...] = (
    DigitsDataModule, ImageFolderDataModule, ArrayDataModule, CSVImageDataModule, TorchvisionDataModule,
    StreamingDataModule,
)  # fmt: skip


def catalogue() -> str:
    """The models and DataModules with their options, for the help pages."""

    def options(cls: type, skip: tuple[str, ...] = ("args", "kwargs")) -> list[str]:
        return [n for n in inspect.signature(cls).parameters if n not in skip]

    lines = ["Models (--model NAME --model.OPTION VALUE; one model's full help: --model.help NAME):"]
    for cls in MODELS:
        own = options(cls)
        shared = options(ClassifierModule, ("args", "kwargs", *own))
        lines.append(f"  {cls.__name__}: {', '.join(own)}; shared: {', '.join(shared)}")
    lines.append("Data (--data NAME --data.OPTION VALUE; full help: --data.help NAME):")
    lines += [f"  {cls.__name__}: {', '.join(options(cls))}" for cls in DATA]
    lines.append("Export a checkpoint (ONNX, TorchScript, torch.export): lightning-cnn export --help")
    lines.append("Convert images to a litdata dataset (StreamingDataModule): lightning-cnn convert --help")
    return "\n".join(lines)


class CNNParser(LightningArgumentParser):
    """The parser, whose message for an unknown option or class name starts with one sentence naming it."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if self.exit_on_error:  # the parser that prints: nested ones raise to it
            message = explain_parser_error(message, {"model": MODELS, "data": DATA})
        super().error(message, ex)

    def print_usage(self, file: Any = None) -> None:
        """One line before an error (``--help`` shows every option): the message stays in view."""
        (file or sys.stdout).write(f"usage: {self.prog.replace(' [options]', '')} [options]\n")
