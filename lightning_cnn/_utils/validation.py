"""Argument checks shared by every constructor: one message format for every bad value."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_probability",
    "check_range",
    "check_registry",
    "check_weights",
    "did_you_mean",
]


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


def check_bool(argument: str, value: Any, *, optional: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool (or ``None`` with ``optional``).

    Example:
        >>> check_bool("compile", 1)
        Traceback (most recent call last):
        ...
        TypeError: Expected compile to be a bool, but got int 1.
    """
    if isinstance(value, bool) or (optional and value is None):
        return
    kind = "a bool or None" if optional else "a bool"
    raise TypeError(f"Expected {argument} to be {kind}, but got {type(value).__name__} {value!r}.")


def check_int(argument: str, value: Any, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) ``>= minimum``.

    Example:
        >>> check_int("top_k", 2.5, 1)
        Traceback (most recent call last):
        ...
        ValueError: Expected top_k to be an int >= 1, but got 2.5.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected {argument} to be an int >= {minimum}, but got {value!r}.")


def check_range(
    argument: str,
    value: float,
    low: float,
    high: float,
    *,
    include_low: bool = True,
    include_high: bool = True,
    where: str = "",
) -> None:
    """Raise ``ValueError`` unless ``value`` lies between ``low`` and ``high`` (each end open or closed).

    Args:
        argument: name of the argument.
        value: the value the user gave.
        low: lower end.
        high: upper end.
        include_low: whether ``low`` itself is allowed.
        include_high: whether ``high`` itself is allowed.
        where: words after the interval in the message (``" for 'resnet18'"``).

    Raises:
        TypeError: for a value that is no number.
        ValueError: for a number outside the interval, or NaN.

    Example:
        >>> check_range("start_factor", 0.0, 0, 1, include_low=False)
        Traceback (most recent call last):
        ...
        ValueError: Expected start_factor to be in (0, 1], but got 0.0.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {argument} to be a number, but got {type(value).__name__} {value!r}.")
    above = value >= low if include_low else value > low
    below = value <= high if include_high else value < high
    if not (above and below):  # NaN fails both
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"Expected {argument} to be in {interval}{where}, but got {value!r}.")


def check_weights(argument: str, value: Any, num_classes: int | None, *, scalar: bool = False) -> Any:
    """Return per-class weights as a float32 tensor (``None`` stays ``None``), or raise naming ``argument``.

    A list needs one finite number >= 0 per class (``num_classes`` of them, when given); ``scalar`` also
    accepts one number, applied to every class.

    Raises:
        TypeError: for a value that is no number or list of numbers.
        ValueError: for a negative or non-finite number, or a list of another length than ``num_classes``.

    Example:
        >>> check_weights("class_weights", [1, 2], num_classes=2)
        tensor([1., 2.])
        >>> check_weights("class_weights", [1.0], num_classes=2)
        Traceback (most recent call last):
        ...
        ValueError: Expected class_weights to be a list of num_classes=2 numbers >= 0, but got [1.0] (1 numbers).
    """
    import torch  # here, so that the other checks import nothing heavy

    if value is None:
        return None
    what = "a list of numbers >= 0" if num_classes is None else f"a list of num_classes={num_classes} numbers >= 0"
    if scalar:
        what = f"a number >= 0 or {what}"
    if isinstance(value, (str, bytes)):
        raise TypeError(f"Expected {argument} to be {what}, but got {value!r}.")
    try:
        weight = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"Expected {argument} to be {what}, but got {value!r}.") from None
    if weight.ndim > 1 or (weight.ndim == 0 and not scalar) or (weight.ndim == 1 and len(weight) == 0):
        raise ValueError(f"Expected {argument} to be {what}, but got {value!r}.")
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise ValueError(f"Expected {argument} to be {what}, but got {value!r}.")
    if weight.ndim == 1 and num_classes is not None and len(weight) != num_classes:
        raise ValueError(f"Expected {argument} to be {what}, but got {value!r} ({len(weight)} numbers).")
    return weight


def check_registry(registry: str, keys: Iterable[str], names: Iterable[str]) -> None:
    """Raise ``RuntimeError`` unless a registry's keys are exactly the names of its ``Literal`` (checked at import).

    Example:
        >>> check_registry("POOLS", {"max": 1, "avg": 2}, ("max", "avg"))
        >>> check_registry("POOLS", {"max": 1}, ("max", "avg"))
        Traceback (most recent call last):
        ...
        RuntimeError: POOLS has the keys ('max',), but its Literal names ('max', 'avg').
    """
    keys, names = tuple(keys), tuple(names)
    if set(keys) != set(names):
        raise RuntimeError(f"{registry} has the keys {keys}, but its Literal names {names}.")
