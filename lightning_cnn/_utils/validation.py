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


__all__ += [
    "check_in_interval",
    "check_optional_size",
    "check_pair",
    "check_range_pair",
    "check_statistics",
    "check_together",
]


def check_in_interval(argument: str, value: float, low: float, high: float) -> float:
    """Return ``value`` as a float when it is a number in ``[low, high]``; raise otherwise (NaN is refused).

    The bounds are shown as given: ``low=0, high=1`` reads ``[0, 1]``, ``high=180.0`` reads ``180.0``.

    Example:
        >>> check_in_interval("p", 1.5, 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: Expected p to be in [0, 1], but got 1.5.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {argument} to be a number, but got {type(value).__name__} {value!r}.")
    if not low <= value <= high:  # NaN fails every comparison
        raise ValueError(f"Expected {argument} to be in [{low}, {high}], but got {value!r}.")
    return float(value)


def check_pair(argument: str, value: Any, meaning: str = "(min, max)") -> tuple[Any, Any]:
    """Return ``value`` as a tuple when it is a sequence of two items (not a string); raise ``TypeError`` otherwise.

    Example:
        >>> check_pair("translate", 0.1, "(dx, dy)")
        Traceback (most recent call last):
        ...
        TypeError: Expected translate to be a pair (dx, dy), but got 0.1.
    """
    from collections.abc import Sequence

    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"Expected {argument} to be a pair {meaning}, but got {value!r}.")
    return value[0], value[1]


def check_range_pair(argument: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """Return ``(min, max)`` as floats when ``value`` is a pair with ``low <= min <= max <= high``; raise otherwise.

    Example:
        >>> check_range_pair("scale", (1.2, 0.9), 0.0, 10.0)
        Traceback (most recent call last):
        ...
        ValueError: Expected scale to be a pair with 0.0 <= min <= max <= 10.0, but got (1.2, 0.9).
    """
    first, second = check_pair(argument, value)
    a, b = float(first), float(second)
    if not low <= a <= b <= high:
        raise ValueError(f"Expected {argument} to be a pair with {low} <= min <= max <= {high}, but got {value!r}.")
    return a, b


def check_optional_size(argument: str, value: int | None) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or an int >= 1 (an image side in pixels).

    Example:
        >>> check_optional_size("image_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: Expected image_size to be an int >= 1 or None, but got 0.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"Expected {argument} to be an int >= 1 or None, but got {value!r}.")


def check_together(first: str, first_value: Any, second: str, second_value: Any) -> None:
    """Raise ``ValueError`` when exactly one of two arguments that belong together is given (not ``None``).

    Example:
        >>> check_together("mean", [0.5], "std", None)
        Traceback (most recent call last):
        ...
        ValueError: Expected mean and std to be given together, but got only one of them.
    """
    if (first_value is None) != (second_value is None):
        raise ValueError(f"Expected {first} and {second} to be given together, but got only one of them.")


def _finite_number(value: Any) -> bool:
    """A finite real number: Python's, NumPy's or a one-element tensor's (not a bool, not a string)."""
    if isinstance(value, (bool, str, bytes)):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def check_statistics(mean: Any, std: Any) -> None:
    """Refuse normalization statistics that are not two equally long, non-empty lists of finite numbers, std > 0.

    Example:
        >>> check_statistics([0.5, 0.5], [0.2])
        Traceback (most recent call last):
        ...
        ValueError: Expected mean and std of the same length, but got [0.5, 0.5] and [0.2].
    """
    for name, values in (("mean", mean), ("std", std)):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise TypeError(f"Expected {name} to be a non-empty list of numbers (one per channel), but got {values!r}.")
        if not all(_finite_number(v) for v in values):
            raise ValueError(f"Expected every {name} value to be a finite number, but got {list(values)!r}.")
    if len(mean) != len(std):
        raise ValueError(f"Expected mean and std of the same length, but got {list(mean)!r} and {list(std)!r}.")
    if any(float(v) <= 0 for v in std):
        raise ValueError(f"Expected every std to be > 0, but got {list(std)!r}.")
