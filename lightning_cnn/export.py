"""Export a trained classifier as one graph, raw ``[0, 1]`` images to probabilities: ONNX, TorchScript, torch.export.

The graph holds the model's input contract (its normalization), so a service feeds it images as a loader gives
them, with any batch size. The class names travel with it: in the ONNX file's metadata properties, and in a
JSON file beside the others (``PATH.json``; TorchScript files also hold it as the extra file ``contract.json``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from lightning_cnn._utils.io import atomic_open
from lightning_cnn._utils.validation import check_choice
from lightning_cnn.models import ClassifierModule
from lightning_cnn.models.contract import check_contract

ExportFormat = Literal["onnx", "torchscript", "exported_program"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "ExportedClassifier",
    "export_classifier",
    "export_main",
    "export_metadata",
]


class ExportedClassifier(nn.Module):
    """A classifier as it is exported: raw images ``[N, C, H, W]`` in ``[0, 1]`` to probabilities ``[N, K]``.

    Class probabilities (softmax), or per-label sigmoid probabilities for a multi-label model.

    The model's own normalization runs inside (in its ``forward``, or here for a module whose ``forward``
    leaves it to the DataModule).

    Example:
        >>> from lightning_cnn import SimpleCNN
        >>> model = SimpleCNN(num_classes=3, channels=(4,), hidden=())
        >>> torch.allclose(ExportedClassifier(model)(torch.rand(2, 1, 8, 8)).sum(-1), torch.ones(2))
        True
    """

    def __init__(self, model: ClassifierModule) -> None:
        super().__init__()
        self.model = model.eval()
        self.preprocess: nn.Module = nn.Identity() if model.normalizes_inputs else model.input_contract

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.probabilities(self.model(self.preprocess(x)))  # softmax, or a sigmoid per label


def export_metadata(model: ClassifierModule) -> dict[str, Any]:
    """What a deployed graph needs beside its weights: the input contract, with class names (``"0"``, ... if none)."""
    contract = model.input_contract
    names = contract.class_names or [str(i) for i in range(int(model.hparams["num_classes"]))]
    statistics = contract.statistics()
    return {
        "class_names": names,
        "in_channels": contract.in_channels,
        "image_size": list(contract.image_size) if contract.image_size is not None else None,
        "normalize": contract.mode,
        "mean": statistics[0] if statistics else None,
        "std": statistics[1] if statistics else None,
        "input": "images [N, C, H, W], float32 in [0, 1]",
        "output": "probabilities [N, num_classes]",
    }


def export_classifier(
    model: ClassifierModule,
    path: str | os.PathLike[str],
    format: ExportFormat = "onnx",
    image_size: int | tuple[int, int] | None = None,
    in_channels: int | None = None,
    where: str | None = None,
) -> Path:
    """Write ``model`` as one graph from raw images to probabilities, with a dynamic batch dimension.

    Args:
        model: a trained classifier (e.g. from :func:`~lightning_cnn.load_classifier`).
        path: the file to write (written whole or not at all).
        format: ``"onnx"``, ``"torchscript"`` or ``"exported_program"``.
        image_size: the input size of the graph; must be the trained one (``None``: the trained one).
        in_channels: the input channels; must be the trained ones (``None``: the trained ones).
        where: the model's name in messages (e.g. its checkpoint's path).

    Raises:
        ValueError: for an unknown format, a model without a known input size, or an ``image_size`` or
            ``in_channels`` other than the model was trained on (naming both).

    Example:
        >>> import tempfile
        >>> from lightning_cnn import SimpleCNN
        >>> model = SimpleCNN(num_classes=2, channels=(4,), hidden=())
        >>> model.input_contract.learn({"normalize": "instance", "in_channels": 1, "image_size": 8,
        ...     "class_names": ["cat", "dog"]})
        >>> path = export_classifier(model, f"{tempfile.mkdtemp()}/model.pt", "torchscript")
        >>> torch.jit.load(path)(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 2])
        >>> json.loads(path.with_name("model.pt.json").read_text())["class_names"]
        ['cat', 'dog']
    """
    check_choice("format", format, EXPORT_FORMATS)
    contract = model.input_contract
    name = where or f"The {type(model).__name__}"
    check_contract(contract, {"image_size": image_size, "in_channels": in_channels}, name, "the export")
    size = contract.image_size or ((image_size, image_size) if isinstance(image_size, int) else image_size)
    channels = contract.in_channels or in_channels or model.hparams.get("in_channels")
    if size is None or channels is None:
        raise ValueError(
            f"{name} holds no trained image size or channels (its input contract was never learned): pass"
            " image_size and in_channels."
        )
    wrapper = ExportedClassifier(model).cpu().eval()
    example = torch.rand(2, int(channels), int(size[0]), int(size[1]))
    metadata = export_metadata(model)
    target = Path(path)
    with torch.no_grad():
        if format == "onnx":
            data = _onnx_bytes(wrapper, example, metadata)
        elif format == "torchscript":
            # Private: Lightning's own to_torchscript sets this flag, without which tracing reads `trainer` and fails.
            model._jit_is_scripting = True
            try:
                traced = torch.jit.trace(wrapper, example)
            finally:
                model._jit_is_scripting = False
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer, _extra_files={"contract.json": json.dumps(metadata)})
            data = buffer.getvalue()
        else:
            batch = torch.export.Dim("batch", min=1, max=65536)
            program = torch.export.export(wrapper, (example,), dynamic_shapes={"x": {0: batch}})
            buffer = io.BytesIO()
            torch.export.save(program, buffer)
            data = buffer.getvalue()
    if format != "onnx":
        with atomic_open(target.with_name(target.name + ".json"), "w") as file:
            json.dump(metadata, file, indent=2)
    with atomic_open(target, "wb") as file:
        file.write(data)
    return target


def _onnx_bytes(wrapper: nn.Module, example: torch.Tensor, metadata: dict[str, Any]) -> bytes:
    """The ONNX model of ``wrapper`` with a dynamic batch dimension and ``metadata`` as its metadata properties."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - the export extra
        raise ImportError("format='onnx' needs onnx and onnxscript: pip install 'lightning-cnn[export]'.") from err
    program = torch.onnx.export(
        wrapper,
        (example,),
        dynamo=True,
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
        verbose=False,
    )
    assert program is not None
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {key: json.dumps(value) for key, value in metadata.items()})
    return proto.SerializeToString()


_EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2"}


def export_main(argv: list[str]) -> Path:
    """``lightning-cnn export``: a checkpoint as one graph, raw images to probabilities (:mod:`lightning_cnn.export`).

    Returns:
        The written file.
    """
    from jsonargparse import ArgumentParser

    from lightning_cnn.inference import load_classifier

    parser = ArgumentParser(
        prog="lightning-cnn export",
        description="Export a checkpoint as one graph: raw [0, 1] images in (any batch size), probabilities out, the"
        " model's normalization inside and its class names in the metadata (ONNX) or in PATH.json (the others).",
    )
    parser.add_argument("--ckpt_path", type=str, required=True, help="The model's checkpoint (e.g. best.ckpt).")
    parser.add_argument("--format", type=ExportFormat, default="onnx", help="onnx, torchscript or exported_program.")
    parser.add_argument("--output", type=str | None, default=None, help="The file (default: beside the checkpoint).")
    parser.add_argument("--image_size", type=int | None, default=None, help="Must be the trained size (a check).")
    parser.add_argument("--in_channels", type=int | None, default=None, help="Must be the trained channels (a check).")
    config = parser.parse_args(argv)
    output = config.output or str(Path(config.ckpt_path).with_suffix(_EXPORT_SUFFIXES[config.format]))
    model = load_classifier(config.ckpt_path)
    path = export_classifier(
        model, output, config.format, config.image_size, config.in_channels, where=f"--ckpt_path {config.ckpt_path}"
    )
    print(f"Exported {config.ckpt_path} as {config.format}: {path}")
    return path
