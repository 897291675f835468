"""Cost of test-time augmentation and ensembles, as ratios against baselines measured in this run.

Prints, for one batch of images:
- K-view TTA: one concatenated forward (batched) vs K separate forwards (loop), and the default path;
- M-member ensemble: vectorized (stack_module_state + vmap) vs a sequential loop, and the default path;
- TTA with K views relative to one plain pass (and to K plain passes timed as one sequence), and a
  5-member ensemble relative to one member.

Usage: python benchmarks/tta_ensemble.py [--threads 1] [--batch 64] [--size 32] [--repeats 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from lightning_cnn import SimpleCNN
from lightning_cnn.callbacks.ensemble import EnsembleEvaluation
from lightning_cnn.callbacks.tta import TestTimeAugmentation
from lightning_cnn.functional import merge_log_probs


def measure(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best (minimum) seconds of each function, interleaved (A B C A B C ...): on a shared machine the
    minimum is the least disturbed by other load, and interleaving exposes every path to the same drift."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(**fns: Callable[[], object]) -> dict[str, float]:
        def synced(fn: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                fn()
                sync()

            return run

        with torch.inference_mode():
            return measure({name: synced(fn) for name, fn in fns.items()}, args.repeats)

    def net(seed: int) -> SimpleCNN:
        torch.manual_seed(seed)
        return SimpleCNN(num_classes=10, in_channels=3, channels=tuple(args.channels)).to(device).eval()

    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    model = net(0)
    print(
        f"device {device} ({torch.get_num_threads()} threads), batch {args.batch}x3x{args.size}x{args.size},"
        f" SimpleCNN channels {args.channels}, best of {args.repeats}, interleaved"
    )

    def plain_pass() -> torch.Tensor:
        return model(x).log_softmax(-1)

    for views in (("identity", "hflip"), ("identity", "hflip", "vflip", "rot180"), ("d4",)):
        batched = TestTimeAugmentation(views=views, batched=True)
        loop = TestTimeAugmentation(views=views, batched=False)
        default = TestTimeAugmentation(views=views)
        k = batched.num_views
        t = timed(
            plain=plain_pass,
            k_plain=lambda k=k: [plain_pass() for _ in range(k)],
            batched=lambda b=batched: b.merged_log_probs(model, x),
            loop=lambda lp=loop: lp.merged_log_probs(model, x),
            default=lambda d=default: d.merged_log_probs(model, x),
        )
        plain, t_batched, t_loop, t_default = t["plain"], t["batched"], t["loop"], t["default"]
        mode = "batched" if default.wrap(model).use_batched(device) else "loop"
        print(
            f"TTA K={k}: plain pass {plain * 1e3:.2f} ms, batched {t_batched * 1e3:.2f} ms, loop {t_loop * 1e3:.2f} ms,"
            f" batched/loop {t_batched / t_loop:.2f}x; default ({mode}) {t_default * 1e3:.2f} ms ="
            f" {t_default / plain:.2f}x one pass (bar {1.05 * k:.2f}x), default/loop {t_default / t_loop:.2f}x"
        )
        # The same bar against K plain passes timed the same way (the minimum of a K-pass sequence, not K
        # times the minimum of one pass, which the noise of single passes flatters).
        print(
            f"        K={k} plain passes {t['k_plain'] * 1e3:.2f} ms: default / K plain passes"
            f" {t_default / t['k_plain']:.3f} (bar 1.05)"
        )

    members = [net(seed) for seed in range(args.members)]
    loop_ens = EnsembleEvaluation(members=members, include_module=False, vectorize=False)
    vmap_ens = EnsembleEvaluation(members=members, include_module=False, vectorize=True)
    default_ens = EnsembleEvaluation(members=members, include_module=False)
    for ens in (loop_ens, vmap_ens, default_ens):
        ens._prepare(None, None)
    t = timed(
        plain=plain_pass,
        loop=lambda: merge_log_probs(loop_ens.member_logits(x)),
        vmap=lambda: merge_log_probs(vmap_ens.member_logits(x)),
        default=lambda: merge_log_probs(default_ens.member_logits(x)),
    )
    plain, t_loop, t_vmap, t_default = t["plain"], t["loop"], t["vmap"], t["default"]
    mode = "vmap" if default_ens._stacked is not None else "loop"
    m = args.members
    print(
        f"ensemble M={m}: one member {plain * 1e3:.2f} ms, vmap {t_vmap * 1e3:.2f} ms, loop {t_loop * 1e3:.2f} ms,"
        f" vmap/loop {t_vmap / t_loop:.2f}x;"
        f" default ({mode}) {t_default * 1e3:.2f} ms = {t_default / plain:.2f}x one member"
        f" (bar 5.5x for M=5), default/loop {t_default / t_loop:.2f}x"
    )
    print("GPU: not measured" if device.type == "cpu" else f"GPU: {torch.cuda.get_device_name(device)}")


if __name__ == "__main__":
    main()
