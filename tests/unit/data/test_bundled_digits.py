"""The digits ship with the package: the same values as scikit-learn's, read without scikit-learn or SciPy."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lightning_cnn
from lightning_cnn.data.digits import load_digit_arrays

ROOT = Path(__file__).resolve().parents[3]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_the_bundled_digits_equal_scikit_learns_exactly():
    datasets = pytest.importorskip("sklearn.datasets")
    expected = datasets.load_digits()
    images, labels = load_digit_arrays()
    assert images.shape == expected.images.shape == (1797, 8, 8) and labels.shape == expected.target.shape
    assert np.array_equal(images, expected.images) and np.array_equal(labels, expected.target)
    assert images.dtype == labels.dtype == np.int64


def test_the_file_is_small_and_declared_as_package_data_with_its_license_note():
    folder = Path(lightning_cnn.__file__).parent / "data"
    assert (folder / "digits.npz").stat().st_size < 100_000
    assert "CC BY 4.0" in (folder / "digits.md").read_text()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = declared["lightning_cnn"]
    for name in ("data/digits.npz", "data/digits.md"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies if d.startswith(("scikit-learn", "scipy"))]


def test_the_digits_datamodule_imports_no_scikit_learn():
    code = (
        "import sys; from lightning_cnn import DigitsDataModule; dm = DigitsDataModule(); dm.setup('fit');"
        "print(len(dm.train_set), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split()[-2:] == ["1259", "False"]
