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


def check_positive(
    argument: str, value: float, *, allow_zero: bool = False, integer: bool = False, finite: bool = False
) -> None:
    """Raise unless ``value > 0`` (or ``>= 0`` with ``allow_zero``); NaN is refused, and a non-int with ``integer``.

    With ``finite``, infinity is refused too (a learning rate, a weight decay).

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
    bound = ">= 0" if allow_zero else "> 0"
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"Expected {argument} to be {bound}, but got {value!r}.")
    if finite and math.isinf(value):
        raise ValueError(f"Expected {argument} to be a finite number {bound}, but got {value!r}.")


def check_probability(argument: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a drop rate, or a split fraction where 0 means no split)."""
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
) -> float:
    """Return ``value`` as a float when it lies between ``low`` and ``high`` (each end open or closed); else raise.

    The bounds are shown as given: ``low=0, high=1`` reads ``[0, 1]``, ``high=180.0`` reads ``180.0``.

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
        interval = f"{'[' if include_low else '('}{low}, {high}{']' if include_high else ')'}"
        raise ValueError(f"Expected {argument} to be in {interval}{where}, but got {value!r}.")
    return float(value)


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


__all__ += [
    "check_index",
    "check_optional_size",
    "check_pair",
    "check_range_pair",
    "check_statistics",
    "check_together",
]


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


def check_index(argument: str, value: Any, size: int, where: str = "") -> int:
    """Return ``value`` when it is an int in ``0..size-1``: ``TypeError`` for another type, ``ValueError`` otherwise.

    Example:
        >>> check_index("fold", 3, 3, "num_folds=3")
        Traceback (most recent call last):
        ...
        ValueError: Expected fold to be an int in 0..2 (num_folds=3), but got 3.
    """
    context = f" ({where})" if where else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Expected {argument} to be an int in 0..{size - 1}{context}, but got {value!r}.")
    if not 0 <= value < size:
        raise ValueError(f"Expected {argument} to be an int in 0..{size - 1}{context}, but got {value!r}.")
    return value


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
