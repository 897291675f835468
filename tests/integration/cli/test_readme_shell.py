"""The README's shell lines that are not `lightning-cnn` commands run too: `make run`, `make test`, `pip install`.

`make run` runs in an empty folder holding links to the repository's Makefile and pyproject.toml and, as `.venv`,
to the environment these tests run in, so it trains and writes `runs/` there exactly as in a clone. `make test` runs
in the repository with its pytest step narrowed to one small test file (the whole suite is what is running now).
Each `pip install` line installs the package into a new, empty environment that sees this one's packages, offline.
The `make` tests need the environment that `make` built (its `.installed` stamp); without it they are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import torch

from tests.helpers.files import read_csv_rows
from tests.helpers.images import assert_real_png

ROOT = Path(__file__).resolve().parents[3]
PREFIX = Path(sys.prefix)
README = (ROOT / "README.md").read_text()

needs_make_env = pytest.mark.skipif(
    shutil.which("make") is None or not (PREFIX / ".installed").is_file(),
    reason="runs `make` in the environment it builds (.venv with its .installed stamp)",
)


def _shell_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line:
                lines.append(line)
    return lines


LINES = _shell_lines()
PIP_LINES = [line for line in LINES if line.startswith("pip install")]
TEST_AGAIN = next(line for line in LINES if line.startswith(".venv/bin/lightning-cnn test"))
PREDICT = next(line for line in LINES if line.startswith(".venv/bin/lightning-cnn predict"))


def _run(command: list[str] | str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, shell=isinstance(command, str), env={**os.environ, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _test_metrics(run_dir: Path) -> dict[str, float]:
    rows = [row for row in read_csv_rows(run_dir / "metrics.csv") if row.get("test/acc")]
    assert len(rows) == 1, rows
    return {key: float(value) for key, value in rows[0].items() if key.startswith("test/") and value}


def test_readme_shell_lines_are_the_ones_tested_here():
    assert LINES[:2] == ["make run", "make test"]
    assert PIP_LINES == ["pip install -e .", 'pip install -e ".[dev]"']
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test", "CI runs the README's test command"


@needs_make_env
def test_make_run_trains_tests_and_draws_then_its_checkpoint_tests_again(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv").symlink_to(PREFIX, target_is_directory=True)

    done = _run(["make", "run"], tmp_path)
    assert "pip install" not in done.stdout, "make reinstalled the environment instead of running"
    assert "Run summary" in done.stdout and "light (" in done.stdout, done.stdout[-3000:]
    run_dir = tmp_path / "runs" / "lightning_cnn" / "version_0"
    metrics = _test_metrics(run_dir)
    print(f"make run test metrics: {metrics}")
    assert metrics["test/acc"] >= 0.99
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["hyper_parameters"]["num_classes"] == 10
    assert {"config.yaml", "splits.json"} <= {p.name for p in run_dir.iterdir()}
    for name in ("curves.png", "confusion_matrix.png", "reliability.png"):
        assert_real_png(run_dir / name)
    assert_real_png(run_dir / "augment_preview.png", min_size=(64, 64))

    _run(TEST_AGAIN, tmp_path)  # the README's next line: test the best checkpoint in a new process
    again = _test_metrics(tmp_path / "runs" / "lightning_cnn" / "version_1")
    assert again.keys() == metrics.keys()
    for key, value in metrics.items():
        assert again[key] == pytest.approx(value, abs=1e-6), key

    _run(PREDICT, tmp_path)  # and the line after it: predictions.csv for the test split
    rows = read_csv_rows(tmp_path / "runs" / "lightning_cnn" / "version_2" / "predictions.csv")
    assert len(rows) == 269
    assert sum(r["label"] == r["predicted"] for r in rows) / len(rows) == pytest.approx(metrics["test/acc"], abs=1e-6)


@needs_make_env
def test_make_test_runs_lint_typecheck_and_pytest():
    one_file = "tests/unit/_utils/test_validation.py"
    done = _run(["make", "test", f"VENV={PREFIX}"], ROOT, PYTEST_ADDOPTS=f"-n 0 {one_file}")
    steps = [line for line in done.stdout.splitlines() if line.startswith(f"{PREFIX}/bin/")]
    assert [step.split("/bin/", 1)[1] for step in steps] == [
        "ruff check .",
        "ruff format --check .",
        "mypy lightning_cnn",
        "python -m pytest",
    ]
    assert re.search(r"\d+ passed", done.stdout) and "failed" not in done.stdout


@pytest.mark.parametrize("line", PIP_LINES)
def test_readme_pip_line_installs_the_package_and_command(tmp_path, line):
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "here.pth").write_text("\n".join(sorted(here)) + "\n")  # the new environment sees this one's packages
    python = env / "bin" / "python"
    offline = ["--no-index", "--no-build-isolation", "--disable-pip-version-check", "-q"]
    _run([str(python), "-m", *shlex.split(line), *offline], ROOT)

    where = _run([str(python), "-c", "import lightning_cnn; print(lightning_cnn.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).parent == ROOT / "lightning_cnn"
    help_page = _run([str(env / "bin" / "lightning-cnn"), "--help"], tmp_path)
    assert "{fit,validate,test,predict}" in help_page.stdout


def test_readme_figures_are_real_pictures():
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README)
    assert "docs/figures/make_run_curves.png" in figures
    for figure in figures:
        assert_real_png(ROOT / figure, min_size=(200, 100))
