"""Channels-last memory format: a training step and an inference pass of ``SimpleCNN`` in four layouts.

The basis of ``ClassifierModule(channels_last=None)`` being on for the CPU (docs/performance.md). Variants,
all on the same weights and batch:

- ``plain``: contiguous (NCHW) weights and inputs, the baseline;
- ``weights``: channels-last convolution weights, contiguous inputs;
- ``inputs``: contiguous weights, channels-last inputs;
- ``both``: channels-last weights and inputs (what the module does when ``channels_last`` is on).

A training step is forward, cross-entropy, backward and an SGD step; inference is a forward under
``torch.inference_mode``. Repeats are interleaved (the order of the variants rotates each repeat), and the
table shows the median images/s and the median over repeats of each variant's ratio to ``plain`` timed in
the same repeat.

Run: ``.venv/bin/python benchmarks/channels_last.py`` (``--help`` for sizes, repeats and threads).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lightning_cnn import SimpleCNN

VARIANTS = ("plain", "weights", "inputs", "both")


def build(variant: str, device: torch.device, in_channels: int) -> SimpleCNN:
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=10, in_channels=in_channels, channels_last=False).to(device)
    if variant in ("weights", "both"):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def step_fn(model: SimpleCNN, x: torch.Tensor, y: torch.Tensor, train: bool) -> Callable[[], None]:
    if not train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)

        return infer
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return train_step


def time_it(fn: Callable[[], None], steps: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    x = torch.randn(args.batch, args.in_channels, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    print(
        f"device {device} ({torch.get_num_threads()} threads), SimpleCNN(), batch {args.batch}x{args.in_channels}"
        f"x{args.size}x{args.size}, {args.steps} steps per timing, {args.repeats} interleaved repeats"
    )
    print(f"{'pass':<10} {'variant':<8} {'median img/s':>13} {'median ratio to plain':>22}")
    for train in (True, False):
        fns = {
            v: step_fn(build(v, device, args.in_channels), x_cl if v in ("inputs", "both") else x, y, train)
            for v in VARIANTS
        }
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(args.repeats):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            seconds = {v: time_it(fns[v], args.steps, device) for v in order}
            for v in VARIANTS:
                rates[v].append(args.batch / seconds[v])
                ratios[v].append(seconds["plain"] / seconds[v])
        for v in VARIANTS:
            print(
                f"{'training' if train else 'inference':<10} {v:<8} {statistics.median(rates[v]):>13.0f}"
                f" {statistics.median(ratios[v]):>22.3f}"
            )


if __name__ == "__main__":
    main()
