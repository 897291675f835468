"""Inference of one exported classifier: eager PyTorch vs TorchScript vs ONNX Runtime, images/s at two batch sizes.

The model is ``SimpleCNN`` (the command line's default) with a learned input contract (dataset normalization),
exported with :func:`lightning_cnn.export.export_classifier`: every runtime goes from raw ``[0, 1]`` images to
probabilities, normalization included. Timings are interleaved (the order of the runtimes rotates each repeat);
the table shows the median images/s and the median over repeats of each runtime's ratio to eager timed in the
same repeat. ONNX Runtime and torch get the same thread count (``--threads``).

Run: ``.venv/bin/python benchmarks/export.py`` (``--help`` for sizes, batches and repeats).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lightning_cnn import SimpleCNN
from lightning_cnn.export import export_classifier

RUNTIMES = ("eager", "torchscript", "onnxruntime")


def build(size: int, channels: int) -> SimpleCNN:
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=10, in_channels=channels, channels_last=False)
    model.input_contract.learn(
        {"normalize": "dataset", "mean": [0.3] * channels, "std": [0.37] * channels, "in_channels": channels}
        | {"image_size": size, "class_names": [str(i) for i in range(10)]}
    )
    return model.eval()


def runners(model: SimpleCNN, folder: Path, threads: int) -> dict[str, Callable[[torch.Tensor], object]]:
    import onnxruntime as ort

    scripted = torch.jit.load(str(export_classifier(model, folder / "model.pt", "torchscript")))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(export_classifier(model, folder / "model.onnx", "onnx")), options)

    def eager(x: torch.Tensor) -> object:
        with torch.inference_mode():
            return model(x).softmax(-1)

    def torchscript(x: torch.Tensor) -> object:
        with torch.inference_mode():
            return scripted(x)

    def onnxruntime(x: torch.Tensor) -> object:
        return session.run(None, {"images": x.numpy()})[0]

    return {"eager": eager, "torchscript": torchscript, "onnxruntime": onnxruntime}


def images_per_second(run: Callable[[torch.Tensor], object], x: torch.Tensor, iters: int) -> float:
    run(x)  # warm-up
    start = time.perf_counter()
    for _ in range(iters):
        run(x)
    return iters * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--channels", type=int, default=1, help="image channels")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="batch sizes")
    parser.add_argument("--images", type=int, default=2048, help="images per timing (at least one batch)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.size, args.channels)
    shape = f"{args.channels}x{args.size}x{args.size}"
    print(f"SimpleCNN, {shape} images, {args.threads} thread(s), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        run = runners(model, Path(folder), args.threads)
        x_all = torch.rand(max(args.batches), args.channels, args.size, args.size)
        reference = run["eager"](x_all[:2])
        for name, fn in run.items():  # the three agree before they are timed
            assert np.allclose(np.asarray(fn(x_all[:2])), np.asarray(reference), atol=1e-4), name
        print(f"{'batch':>5}  {'runtime':<12} {'images/s':>10}  {'/eager':>7}")
        for batch in args.batches:
            x = x_all[:batch]
            iters = max(1, args.images // batch)
            speeds: dict[str, list[float]] = {name: [] for name in RUNTIMES}
            ratios: dict[str, list[float]] = {name: [] for name in RUNTIMES}
            for repeat in range(args.repeats):
                order = RUNTIMES[repeat % 3 :] + RUNTIMES[: repeat % 3]
                measured = {name: images_per_second(run[name], x, iters) for name in order}
                for name in RUNTIMES:
                    speeds[name].append(measured[name])
                    ratios[name].append(measured[name] / measured["eager"])
            for name in RUNTIMES:
                speed, ratio = statistics.median(speeds[name]), statistics.median(ratios[name])
                print(f"{batch:>5}  {name:<12} {speed:>10.0f}  {ratio:>6.2f}x")


if __name__ == "__main__":
    main()
