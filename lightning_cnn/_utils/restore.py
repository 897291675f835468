"""Building a module whose tensors will all come from a checkpoint: skip loading its own weights file.

A checkpoint's state dict replaces every tensor of the module built from its hyperparameters, so a module
that reads a weights file or downloads pretrained weights in ``__init__`` need not do it then; and it must
not, where that file or the network is gone. Whoever restores (``load_from_checkpoint``, the ensemble's
member loader, the command line) enters :func:`restoring_weights`; a module that loads weights asks
:func:`skipped_loads` once in its ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["restoring_weights", "skipped_loads"]

# While a module is being restored: the arguments (``weights``, ``pretrained``) whose loading it skips.
_RESTORING: ContextVar[frozenset[str]] = ContextVar("_RESTORING", default=frozenset())


@contextmanager
def restoring_weights(keep: Iterable[str] = ()) -> Iterator[None]:
    """Inside it, the next module built reads no ``weights`` file and downloads no pretrained weights.

    For building a model whose tensors then come from a checkpoint's state dict (which replaces them all), so the
    checkpoint can be used where the weights file or the network is gone. The hyperparameters keep their values.

    Args:
        keep: of ``"weights"`` and ``"pretrained"``, those to load all the same.

    Example:
        >>> with restoring_weights():
        ...     sorted(skipped_loads())
        ['pretrained', 'weights']
        >>> skipped_loads()
        frozenset()
    """
    token = _RESTORING.set(frozenset({"weights", "pretrained"} - set(keep)))
    try:
        yield
    finally:
        _RESTORING.reset(token)


def skipped_loads() -> frozenset[str]:
    """The loads the module now being built skips; later modules (built inside it) skip none.

    Call it once, at the start of the ``__init__`` of a module that loads weights.
    """
    skip = _RESTORING.get()
    _RESTORING.set(frozenset())  # only the module being restored skips them, not any it builds inside
    return skip
