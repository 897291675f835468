"""Start-up time: ``lightning-cnn --help`` against ``python -c "import lightning.pytorch.cli"``, in one run.

Each repeat starts both commands as fresh processes, one after the other (in alternating order), and the ratio of
the medians is printed. The goal is at most 1.05x: the command line adds little to what Lightning's own CLI module
costs to import. A last line says whether Lightning's import already brings SciPy (torchmetrics imports it whenever
it is installed) and how much of the baseline that is, from ``python -X importtime``.

Both sides start from bytecode: pip compiles an installed package's modules (Lightning's are), but an editable install
under ``PYTHONDONTWRITEBYTECODE=1`` never writes ``lightning_cnn``'s, and compiling its modules on every start would
be timed against a baseline that compiles nothing. So the package's ``__pycache__`` is written first (as
``pip install`` does), and the line saying so names how many modules that was.

    python benchmarks/startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import time

BASELINE = [sys.executable, "-c", "import lightning.pytorch.cli"]
HELP = [sys.executable, "-m", "lightning_cnn", "--help"]  # what the lightning-cnn script runs


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one start; CPU time is steadier on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def scipy_share() -> tuple[bool, float]:
    """Whether importing Lightning's CLI imports SciPy, and the cumulative seconds of its outermost SciPy imports."""
    code = "import sys, lightning.pytorch.cli; print('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    total, outer = 0, None
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)$", line)
        if match is None or not match[3].startswith("scipy"):
            continue
        depth = len(match[2])
        if outer is None or depth <= outer:  # an outermost scipy import (children are listed before parents)
            outer = depth
    if outer is not None:
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)$", line)
            if match and match[3].startswith("scipy") and len(match[2]) == outer:
                total += int(match[1])
    return done.stdout.strip() == "True", total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="paired starts of each command")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f} at the start")
    import lightning_cnn

    package = os.path.dirname(lightning_cnn.__file__)
    modules = sum(len([f for f in files if f.endswith(".py")]) for _, _, files in os.walk(package))
    compileall.compile_dir(package, quiet=1)  # py_compile writes whatever PYTHONDONTWRITEBYTECODE says
    print(f"bytecode of {modules} modules of lightning_cnn written (as pip install does for an installed package)")
    timed(BASELINE), timed(HELP)  # warm the file cache once, untimed
    base: list[tuple[float, float]] = []
    cli: list[tuple[float, float]] = []
    for repeat in range(args.repeats):
        pair = (BASELINE, HELP) if repeat % 2 == 0 else (HELP, BASELINE)
        times = {id(c): timed(c) for c in pair}
        base.append(times[id(BASELINE)])
        cli.append(times[id(HELP)])
        print(
            f"repeat {repeat}: import lightning.pytorch.cli {base[-1][0]:.3f} s ({base[-1][1]:.3f} s CPU),"
            f" lightning-cnn --help {cli[-1][0]:.3f} s ({cli[-1][1]:.3f} s CPU)"
        )
    for kind, i in (("wall", 0), ("CPU", 1)):
        b, c = statistics.median(t[i] for t in base), statistics.median(t[i] for t in cli)
        print(
            f"median {kind}: import lightning.pytorch.cli {b:.3f} s, lightning-cnn --help {c:.3f} s,"
            f" ratio {c / b:.3f}x (goal <= 1.05x; median of {args.repeats} paired repeats)"
        )
    imported, seconds = scipy_share()
    print(
        f"scipy imported by lightning.pytorch.cli itself (torchmetrics imports it when installed): "
        f"{'yes' if imported else 'no'}, {seconds:.3f} s of its imports"
    )
    print(f"load average {os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f} at the end")


if __name__ == "__main__":
    main()
