"""``import lightning_cnn`` makes a process leave its process group at exit, while the interpreter is still whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.ddp import free_port

ROOT = Path(__file__).resolve().parents[3]

# An exit handler registered before the import runs after the package's (last in, first out): it reports whether the
# process still held the group when the package's handler was done.
SCRIPT = """
import atexit, sys
import torch.distributed as dist
atexit.register(lambda: print("joined at exit:", dist.is_initialized(), flush=True))
if sys.argv[2] == "import":
    import lightning_cnn
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[1]}", rank=0, world_size=1)
print("joined:", dist.is_initialized(), flush=True)
"""


def _run(mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(free_port()), mode], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_process_that_imported_the_package_leaves_its_group_at_exit():
    assert _run("import") == ["joined: True", "joined at exit: False"]


def test_without_the_package_the_group_outlives_the_exit_handlers():
    assert _run("plain") == ["joined: True", "joined at exit: True"]
