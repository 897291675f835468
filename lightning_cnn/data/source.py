"""What a data source gives a DataModule: labels, datasets for given indices, class names, image shape."""

from __future__ import annotations

import inspect

import numpy as np
from torch.utils.data import Dataset

__all__ = ["DataSource", "passed_on_signature"]

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def passed_on_signature(cls: type) -> inspect.Signature:
    """``cls``'s ``__init__`` parameters with, when it takes ``**kwargs``, its parent's that it passes on.

    What ``inspect.signature(cls)`` shows for a source that calls ``super().__init__(**kwargs)``: its own
    positional arguments, then the parent's arguments in the parent's order (keyword-only; an own keyword-only
    argument of the same name, such as another default, takes the parent's place; those the source fixes
    itself, its ``fixed_arguments``, are left out), then its other keyword-only arguments.

    Example:
        >>> class Base:
        ...     def __init__(self, batch_size: int = 64, val: float = 0.2, seed: int = 0) -> None: ...
        >>> class Source(Base):
        ...     fixed_arguments = ("seed",)
        ...     def __init__(self, root: str, *, val: float = 0.1, rgb: bool = False, **kwargs) -> None: ...
        >>> passed_on_signature(Source)
        <Signature (root: 'str', *, batch_size: 'int' = 64, val: 'float' = 0.1, rgb: 'bool' = False)>
    """
    own = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    params = [p for p in own if p.kind not in _VARIADIC]
    if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in own):
        return inspect.Signature(params)
    keyword = {p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fixed = set(getattr(cls, "fixed_arguments", ()))
    merged = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    taken = {p.name for p in merged} | fixed
    for p in inspect.signature(cls.__mro__[1]).parameters.values():
        if p.name not in taken and p.kind not in _VARIADIC:
            merged.append(keyword.pop(p.name, p.replace(kind=inspect.Parameter.KEYWORD_ONLY)))
    return inspect.Signature(merged + list(keyword.values()))


class DataSource:
    """The interface a source implements for :class:`~lightning_cnn.data.base.ClassifierDataModule`.

    :meth:`labels` gives the class index of every sample (cheap: no image decoded) and :meth:`make_dataset`
    a dataset of ``(image, label)`` for given indices; a source with an explicit test set also sets
    :attr:`has_test_source` and implements :meth:`make_test_dataset`.
    """

    def labels(self) -> np.ndarray:
        """Class index of every sample of the split pool (train, val and, without a test source, test)."""
        raise NotImplementedError

    def make_dataset(self, indices: np.ndarray, train: bool) -> Dataset:
        """A dataset of ``(image [C, H, W] float in [0, 1], label)`` for the given sample indices of the pool."""
        raise NotImplementedError

    @property
    def has_pool(self) -> bool:
        """Whether there are labelled samples to split (``False``: a source given only images to predict)."""
        return True

    @property
    def has_test_source(self) -> bool:
        """Whether the test set is a source of its own (then the pool splits into train and val only)."""
        return False

    def make_test_dataset(self) -> Dataset:
        """The explicit test set (only called in the ``test`` and ``predict`` stages)."""
        raise NotImplementedError

    def make_predict_dataset(self) -> Dataset | None:
        """Images to predict other than the test set, as a dataset of ``(image,)`` (``None``: predict the test set)."""
        return None

    @property
    def task(self) -> str:
        """``"multilabel"`` when :meth:`labels` is a 0/1 matrix ``[N, L]``, else ``"multiclass"``."""
        return "multilabel" if np.ndim(self.labels()) == 2 else "multiclass"

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, in class-index order."""
        raise NotImplementedError

    @property
    def in_channels(self) -> int:
        """Channels of the images (1 grayscale, 3 RGB)."""
        raise NotImplementedError

    @property
    def image_size(self) -> int | None:
        """The larger side of the images the loaders give, when known."""
        return None
