"""Seeded, stratified train / validation / test splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lightning_cnn._utils.validation import check_fraction

__all__ = ["check_fractions", "stratified_split"]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless ``0 < val_fraction < 1``, ``test_fraction`` is 0 or in (0, 1), and their sum < 1.

    Example:
        >>> check_fractions(0.5, 0.5)
        Traceback (most recent call last):
        ...
        ValueError: Expected val_fraction + test_fraction to be < 1 (some data must train), but got 0.5 + 0.5 = 1.
    """
    check_fraction("val_fraction", val_fraction)
    if test_fraction != 0:
        check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"Expected val_fraction + test_fraction to be < 1 (some data must train), but got"
            f" {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}."
        )


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Split sample indices into train, val and test, class by class, reproducibly.

    Each class's indices are shuffled by a generator seeded with ``seed`` and cut so that the class gets
    ``round(n_c * val_fraction)`` validation and ``round(n_c * test_fraction)`` test samples; the rest
    train. The result depends only on ``labels``, the fractions and the seed: every process (every DDP
    rank) computes the same split without communication.

    Args:
        labels: class index of every sample.
        val_fraction: share of each class for validation, in ``(0, 1)``.
        test_fraction: share of each class for the test set, in ``[0, 1)`` (0: no test split).
        seed: seed of the shuffle.
        class_names: names for error messages.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 index arrays.

    Raises:
        ValueError: for fractions out of range or summing to 1 or more, fewer than two classes, or a class
            too small to give every split a sample.

    Example:
        >>> s = stratified_split([0] * 10 + [1] * 10, val_fraction=0.2, test_fraction=0.2, seed=0)
        >>> [len(s[k]) for k in ("train", "val", "test")]
        [12, 4, 4]
    """
    check_fractions(val_fraction, test_fraction)
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"Expected labels to be a non-empty 1-D sequence, but got shape {y.shape}.")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"Expected at least 2 classes to classify, but the labels hold only {classes.tolist()}.")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in classes:
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        n_val = round(idx.size * val_fraction)
        n_test = round(idx.size * test_fraction)
        if n_val < 1 or (test_fraction > 0 and n_test < 1) or idx.size - n_val - n_test < 1:
            name = class_names[c] if class_names is not None and c < len(class_names) else int(c)
            raise ValueError(
                f"Class {name!r} has {idx.size} samples: too few to give train, val (fraction {val_fraction})"
                f" and test (fraction {test_fraction}) at least one each. Add samples, raise the fractions,"
                " or remove the class."
            )
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
