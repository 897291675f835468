"""The package keeps the layers of docs/architecture.md: every file is walked, and a violation fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.layering import read_layers, violations

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lightning_cnn"
DOC = ROOT / "docs" / "architecture.md"


def test_every_file_of_the_package_keeps_the_layers():
    assert violations(PACKAGE, DOC) == []


def test_every_folder_of_the_package_is_in_a_layer():
    layers = read_layers(DOC)
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts.discard("__pycache__")
    assert parts <= set(layers), sorted(parts - set(layers))
    assert {"_utils", "nn", "functional", "losses", "optim", "augment", "tta", "data", "models", "callbacks"} <= set(
        layers
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "lightning_cnn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize(
    ("file", "line", "expected"),
    [
        ("nn/blocks.py", "import lightning.pytorch as pl", "the pure layer imports Lightning (lightning.pytorch)"),
        ("_utils/batch.py", "from lightning.pytorch import Trainer", "the utilities layer imports Lightning"),
        ("losses.py", "from lightning_cnn.models import SimpleCNN", "the pure layer imports the models layer"),
        ("callbacks/guard.py", "from lightning_cnn.models.base import ClassifierModule", "imports the models layer"),
        ("callbacks/guard.py", "from lightning_cnn import data", "the callbacks layer imports the data layer"),
        ("data/splits.py", "from ..callbacks import guard", "the data layer imports the callbacks layer"),
        ("models/simple_cnn.py", "from lightning_cnn.cli import main", "imports the command line"),
        ("models/simple_cnn.py", "from lightning_cnn.nn.blocks import _private", "imports the private name _private"),
        ("data/splits.py", "import lightning_cnn.nn._secret", "imports the private module"),
    ],
)
def test_a_deliberate_violation_is_found(package_copy: Path, file: str, line: str, expected: str):
    target = package_copy / file
    assert violations(package_copy, DOC) == []
    target.write_text(target.read_text() + f"\n\ndef _late():\n    {line}\n")  # nested imports count too
    found = violations(package_copy, DOC)
    assert len(found) == 1 and expected in found[0] and found[0].startswith(f"lightning_cnn/{file}:"), found


def test_a_long_file_and_a_folder_outside_the_layers_are_found(package_copy: Path):
    (package_copy / "nn" / "blocks.py").write_text("x = 1\n" * 451)
    (package_copy / "extras").mkdir()
    (package_copy / "extras" / "__init__.py").write_text("")
    found = violations(package_copy, DOC)
    assert any("nn/blocks.py: 451 lines" in f for f in found), found
    assert any("'extras' is in no layer" in f for f in found), found


def test_importing_a_callback_loads_no_timm():
    code = "import sys, lightning_cnn.callbacks.early_stopping; print('timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_concept_table_names_every_module_and_only_files_that_exist():
    text = DOC.read_text()
    table = text[text.index("<!-- concepts") :].split("\n\n", 1)[0]
    named = {path for row in table.splitlines()[3:] for path in re.findall(r"`([^`]+\.py)`", row.rsplit("|", 2)[1])}
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    assert sorted(named - modules) == [], "named in docs/architecture.md, but no such file"
    assert sorted(modules - named) == [], "modules missing from the concept table of docs/architecture.md"


def test_the_command_line_help_loads_no_timm():
    code = "import sys, lightning_cnn.cli; print('timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_protocol_table_lists_every_protocol():
    from lightning_cnn._utils import protocols

    text = DOC.read_text()
    table = text[text.index("## Protocols") : text.index("## Where each concept lives")]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M))
    assert listed == set(protocols.__all__)
