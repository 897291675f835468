"""Data at scale: an image folder (``ImageFolderDataModule``) against its litdata conversion (``StreamingDataModule``).

One run generates ``--images`` 16x16 grayscale PNGs of 10 classes in a temporary folder (in parallel), converts it
with ``lightning-cnn convert``, and measures for both sources, each phase in a fresh forked process:

- ``setup("fit")`` with the default ``normalize="dataset"`` (list or read the labels, split, and read every training
  image once for the statistics) and with given ``mean``/``std`` (list or read the labels and split only);
- the training loader's images/s over ``--loader-images`` images (``--workers`` loader processes);
- the phase's peak memory above the process's start (``VmHWM - VmRSS`` from ``/proc/self/status``).

The ratios are folder / streaming for times and memory, streaming / folder for images/s (above 1: streaming is better).

    python benchmarks/data_scale.py --images 100000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _write_pngs(args: tuple[str, int, int]) -> None:
    from PIL import Image

    root, start, stop = args
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        image = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(image).save(Path(root, f"class{i % 10}", f"{i:07d}.png"))


def generate(root: Path, count: int, workers: int) -> None:
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
    step = max(1, count // (workers * 8))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_write_pngs, [(str(root), s, min(count, s + step)) for s in range(0, count, step)])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def in_child(phase: Callable[[], dict]) -> dict:
    """Run ``phase`` in a forked process; its result with its peak memory above the process's start (MiB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start = _status_kib("VmRSS")
        try:
            result = phase()
            result["peak_mib"] = (_status_kib("VmHWM") - start) / 1024
        except BaseException as err:  # the parent prints it
            result = {"error": repr(err)}
        with os.fdopen(write, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as inp:
        text = inp.read()
    os.waitpid(pid, 0)
    result = json.loads(text)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def setup_phase(make: Callable[..., object], given_statistics: bool) -> Callable[[], dict]:
    def phase() -> dict:
        start = time.perf_counter()
        dm = make(**({"mean": [0.5], "std": [0.25]} if given_statistics else {}))
        dm.setup("fit")  # type: ignore[attr-defined]
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "train_images": len(dm.split["train"])}  # type: ignore[attr-defined]

    return phase


def loader_phase(make: Callable[..., object], images: int) -> Callable[[], dict]:
    def phase() -> dict:
        dm = make(mean=[0.5], std=[0.25])
        dm.setup("fit")  # type: ignore[attr-defined]
        seen, start = 0, time.perf_counter()
        for x, _ in dm.train_dataloader():  # type: ignore[attr-defined]
            seen += x.shape[0]
            if seen >= images:
                break
        return {"images_per_s": seen / (time.perf_counter() - start), "images": seen}

    return phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="PNGs to generate (the issue's scale: 100000)")
    parser.add_argument("--loader-images", type=int, default=10_000, help="images each loader is timed over")
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes (and writers, at least 1)")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    from lightning_cnn import ImageFolderDataModule, StreamingDataModule
    from lightning_cnn.convert import convert_dataset

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start", flush=True)

    with tempfile.TemporaryDirectory(prefix="data_scale.") as tmp:
        root, converted = Path(tmp, "folder"), Path(tmp, "converted")
        start = time.perf_counter()
        generate(root, args.images, max(1, args.workers))
        generated = time.perf_counter() - start
        print(f"generated {args.images} PNGs in {generated:.1f} s", flush=True)
        start = time.perf_counter()
        convert_dataset(str(root), str(converted), color="grayscale", num_workers=max(1, args.workers))
        conversion = time.perf_counter() - start
        print(f"converted in {conversion:.1f} s", flush=True)
        shared = {"batch_size": args.batch, "num_workers": args.workers}
        sources = {
            "folder": lambda **kw: ImageFolderDataModule(str(root), color="grayscale", **shared, **kw),
            "streaming": lambda **kw: StreamingDataModule(str(converted), **shared, **kw),
            "streaming(order=streaming)": lambda **kw: StreamingDataModule(
                str(converted), order="streaming", **shared, **kw
            ),
        }
        rows = {}
        for name, make in sources.items():
            rows[name] = {
                "setup": in_child(setup_phase(make, given_statistics=False)),
                "setup_given_stats": in_child(setup_phase(make, given_statistics=True)),
                "loader": in_child(loader_phase(make, args.loader_images)),
            }
            print(f"{name}: {json.dumps(rows[name])}", flush=True)
    print(f"{args.images} images 16x16 (10 classes): generated in {generated:.1f} s, converted in {conversion:.1f} s")
    print("training split sizes: " + ", ".join(f"{n} {row['setup']['train_images']}" for n, row in rows.items()))
    header = f"{'source':<28} {'setup s':>8} {'MiB':>6} {'setup, given stats s':>21} {'MiB':>6}"
    print(f"{header} {'loader img/s':>13} {'MiB':>6}")
    for name, row in rows.items():
        s, g, ld = row["setup"], row["setup_given_stats"], row["loader"]
        print(
            f"{name:<28} {s['seconds']:>8.2f} {s['peak_mib']:>6.0f} {g['seconds']:>21.2f} {g['peak_mib']:>6.0f}"
            f" {ld['images_per_s']:>13.0f} {ld['peak_mib']:>6.0f}"
        )
    folder = rows["folder"]
    for name in ("streaming", "streaming(order=streaming)"):
        row = rows[name]
        print(
            f"ratio {name}: setup folder/streaming {folder['setup']['seconds'] / row['setup']['seconds']:.2f}x,"
            f" given stats {folder['setup_given_stats']['seconds'] / row['setup_given_stats']['seconds']:.2f}x,"
            f" loader streaming/folder {row['loader']['images_per_s'] / folder['loader']['images_per_s']:.2f}x,"
            f" setup memory folder/streaming"
            f" {max(folder['setup']['peak_mib'], 0.1) / max(row['setup']['peak_mib'], 0.1):.2f}x"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
