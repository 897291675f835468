"""Argument checks shared by every constructor: one message format for every bad value."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["check_choice", "check_fraction", "check_positive", "check_probability", "did_you_mean"]


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``" Did you mean 'x' or 'y'?"`` for the close matches of ``value`` among ``choices``, or ``""``.

    The one spelling suggestion of the package: append it to an error message.

    Example:
        >>> did_you_mean("relux", ("relu", "gelu", "tanh"))
        " Did you mean 'relu' or 'gelu'?"
        >>> did_you_mean(3, ("relu",))
        ''
    """
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value.lower(), list(choices), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_choice(argument: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` when it is one of ``choices``; raise otherwise.

    Args:
        argument: name of the argument, as the user wrote it.
        value: the value the user gave.
        choices: the allowed names.

    Raises:
        ValueError: naming the argument, showing the value and listing the valid choices.

    Example:
        >>> check_choice("pool", "max", ("max", "avg"))
        'max'
        >>> check_choice("pool", "mx", ("max", "avg"))
        Traceback (most recent call last):
        ...
        ValueError: Expected pool to be one of ('max', 'avg'), but got 'mx'. Did you mean 'max'?
    """
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        hint = did_you_mean(value, options)
        raise ValueError(f"Expected {argument} to be one of {options}, but got {value!r}.{hint}")
    return value


def check_positive(argument: str, value: float, *, allow_zero: bool = False, integer: bool = False) -> None:
    """Raise unless ``value > 0`` (or ``>= 0`` with ``allow_zero``); NaN is refused, and a non-int with ``integer``.

    Example:
        >>> check_positive("batch_size", 2.5, integer=True)
        Traceback (most recent call last):
        ...
        TypeError: Expected batch_size to be an int, but got float 2.5.
        >>> check_positive("lr", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: Expected lr to be > 0, but got nan.
    """
    kind = "an int" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"Expected {argument} to be {kind}, but got {type(value).__name__} {value!r}.")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Expected {argument} to be {bound}, but got {value!r}.")


def check_probability(argument: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a drop rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {argument} to be a number, but got {type(value).__name__} {value!r}.")
    if not 0.0 <= value < 1.0:  # NaN fails every comparison
        raise ValueError(f"Expected {argument} to be in [0, 1), but got {value!r}.")


def check_fraction(argument: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 < value < 1`` (a split fraction)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {argument} to be a number, but got {type(value).__name__} {value!r}.")
    if not 0.0 < value < 1.0:
        raise ValueError(f"Expected {argument} to be in (0, 1), but got {value!r}.")


def check_between(
    argument: str, value: float, low: float, high: float, *, include_low: bool = True, include_high: bool = True
) -> None:
    """Raise ``ValueError`` unless ``value`` lies between ``low`` and ``high`` (each bound included or not).

    Example:
        >>> check_between("crop_fraction", 1.5, 0.0, 1.0, include_low=False)
        Traceback (most recent call last):
        ...
        ValueError: Expected crop_fraction to be in (0, 1], but got 1.5.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {argument} to be a number, but got {type(value).__name__} {value!r}.")
    above = value >= low if include_low else value > low
    below = value <= high if include_high else value < high
    if not (above and below):  # NaN fails every comparison
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"Expected {argument} to be in {interval}, but got {value!r}.")
