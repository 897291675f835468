"""RandAugment, TrivialAugment and AutoAugment as batched transforms: each sample its own operations and magnitudes.

torchvision's ``RandAugment``, ``TrivialAugmentWide`` and ``AutoAugment`` draw the operations for one image;
given a batch tensor they would give every image the same ones. These draw them for each sample of a
batch, from the same operation tables and with the same probabilities (the tables are read from
torchvision, so the per-sample path in loader workers and this one cannot drift apart), and apply them
with :func:`~lightning_cnn.augment.policy_ops.apply_ops`: the samples that drew one operation are
transformed together. :meth:`~lightning_cnn.augment.base.BatchTransform.to_torchvision` gives the
torchvision transform itself, for ``augment_on="cpu"``; it takes the float images in ``[0, 1]`` (one or
three channels) that the loaders give and returns them as floats in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch

from lightning_cnn._utils.validation import check_choice, check_index, check_int
from lightning_cnn.augment.base import BatchTransform, Params, rand
from lightning_cnn.augment.policy_ops import OP_NAMES, Interpolation, apply_ops

__all__ = [
    "AUTOAUGMENT_POLICIES",
    "AutoAugment",
    "AutoAugmentPolicyName",
    "INTERPOLATIONS",
    "RandAugment",
    "TrivialAugment",
    "magnitude_table",
]

AutoAugmentPolicyName = Literal["imagenet", "cifar10", "svhn"]
AUTOAUGMENT_POLICIES: tuple[str, ...] = get_args(AutoAugmentPolicyName)
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)
_SPACES = {"randaugment": "RandAugment", "trivialaugment": "TrivialAugmentWide", "autoaugment": "AutoAugment"}


def _space(kind: str) -> dict[str, tuple[Callable[[int, int, int], torch.Tensor | None], bool]]:
    from torchvision.transforms import v2

    # torchvision's own table of operations, magnitude bins and signs (private; see docs/architecture.md).
    return getattr(v2, _SPACES[kind])._AUGMENTATION_SPACE


def magnitude_table(
    kind: str, num_bins: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The operations of a policy's space, their magnitude bins and whether each takes a random sign.

    Args:
        kind: ``"randaugment"``, ``"trivialaugment"`` or ``"autoaugment"``.
        num_bins: number of magnitude bins.
        height: image height (translations are a share of it).
        width: image width.

    Returns:
        ``ops`` ``[K]`` (indices into :data:`~lightning_cnn.augment.policy_ops.OP_NAMES`), ``magnitudes``
        ``[K, num_bins]`` (0 for the operations without one) and ``signed`` ``[K]``.

    Example:
        >>> ops, magnitudes, signed = magnitude_table("randaugment", 31, 32, 32)
        >>> [OP_NAMES[i] for i in ops[:3]], magnitudes.shape, bool(signed[5])
        (['Identity', 'ShearX', 'ShearY'], torch.Size([14, 31]), True)
    """
    check_choice("kind", kind, tuple(_SPACES))
    ops, rows, signed = [], [], []
    for name, (bins, is_signed) in _space(kind).items():
        values = bins(num_bins, height, width)
        ops.append(OP_NAMES.index(name))
        rows.append(torch.zeros(num_bins) if values is None else values.to(torch.float32))
        signed.append(is_signed)
    return torch.tensor(ops), torch.stack(rows), torch.tensor(signed)


def _index(u: torch.Tensor, high: int) -> torch.Tensor:
    """Uniform draws ``u`` in ``[0, 1)`` as indices ``0..high - 1``."""
    return (u * high).long().clamp_(max=high - 1)


def _signed(magnitude: torch.Tensor, signed: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``magnitude``, negated where the operation takes a sign and ``u <= 0.5`` (as torchvision draws it)."""
    return torch.where(signed & (u <= 0.5), -magnitude, magnitude)


class _Policy(BatchTransform):
    """Base of the policies: :meth:`draw` gives each step's operation and magnitude per sample."""

    kind = ""
    num_magnitude_bins = 10

    def __init__(self, interpolation: Interpolation = "nearest", p: float = 1.0) -> None:
        super().__init__(p)
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)
        self._tables: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def table(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`magnitude_table` for ``x``'s size, on ``x``'s device (cached)."""
        h, w = x.shape[-2:]
        key = (h, w, str(x.device))
        if key not in self._tables:
            table = magnitude_table(self.kind, self.num_magnitude_bins, h, w)
            self._tables[key] = tuple(t.to(x.device) for t in table)  # type: ignore[assignment]
        return self._tables[key]

    def draw(self, x: torch.Tensor, generator: torch.Generator | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per step, each sample's operation (an index into ``OP_NAMES``, ``[B]``) and signed magnitude ``[B]``."""
        raise NotImplementedError

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        params = super().make_params(x, generator)
        for step, (ops, magnitude) in enumerate(self.draw(x, generator)):
            params[f"op{step}"] = ops * params["apply"]  # 0: Identity
            params[f"magnitude{step}"] = magnitude
        return params

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        steps = range(sum(key.startswith("op") for key in params))
        if not steps:  # RandAugment(num_ops=0)
            return x
        ops = torch.stack([params[f"op{step}"] for step in steps], dim=1)
        magnitude = torch.stack([params[f"magnitude{step}"] for step in steps], dim=1)
        return apply_ops(x, ops, magnitude, self.interpolation)  # type: ignore[arg-type]


class RandAugment(_Policy):
    """RandAugment: ``num_ops`` operations a sample, each drawn uniformly, all at one ``magnitude``.

    Each sample draws its own operations (from torchvision's 14: identity, shears, translations,
    rotation, brightness, colour, contrast, sharpness, posterize, solarize, autocontrast, equalize) and
    the sign of each magnitude; ``magnitude`` picks the bin of ``num_magnitude_bins`` (from none to the
    strongest) for every operation.

    Args:
        num_ops: operations applied to each sample, one after another.
        magnitude: the magnitude bin, ``0..num_magnitude_bins - 1``.
        num_magnitude_bins: number of magnitude bins.
        interpolation: ``"nearest"`` (torchvision's default) or ``"bilinear"``.
        p: probability of augmenting each sample.

    Example:
        >>> aug = RandAugment(num_ops=2, magnitude=9)
        >>> x = torch.rand(8, 3, 16, 16)
        >>> y = aug(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape, torch.equal(y, aug(x, generator=torch.Generator().manual_seed(0)))
        (torch.Size([8, 3, 16, 16]), True)
    """

    kind = "randaugment"

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        interpolation: Interpolation = "nearest",
        p: float = 1.0,
    ) -> None:
        super().__init__(interpolation, p)
        check_int("num_ops", num_ops, 0)
        check_int("num_magnitude_bins", num_magnitude_bins, 2)
        check_index("magnitude", magnitude, num_magnitude_bins, f"num_magnitude_bins={num_magnitude_bins}")
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins

    def draw(self, x: torch.Tensor, generator: torch.Generator | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ops, magnitudes, signed = self.table(x)
        u = rand(x.shape[0], x, generator, 2, self.num_ops)  # per sample and step: the operation, the sign
        k = _index(u[:, 0], len(ops))
        magnitude = _signed(magnitudes[:, self.magnitude][k], signed[k], u[:, 1])
        return [(ops[k[:, i]], magnitude[:, i]) for i in range(self.num_ops)]

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        t = v2.RandAugment(self.num_ops, self.magnitude, self.num_magnitude_bins, interpolation=self.interpolation)
        return self._maybe_random_apply(t)


class TrivialAugment(_Policy):
    """TrivialAugment (the "wide" space): one operation a sample, at a magnitude drawn uniformly from its bins.

    Args:
        num_magnitude_bins: number of magnitude bins.
        interpolation: ``"nearest"`` (torchvision's default) or ``"bilinear"``.
        p: probability of augmenting each sample.
    """

    kind = "trivialaugment"

    def __init__(self, num_magnitude_bins: int = 31, interpolation: Interpolation = "nearest", p: float = 1.0) -> None:
        super().__init__(interpolation, p)
        check_int("num_magnitude_bins", num_magnitude_bins, 2)
        self.num_magnitude_bins = num_magnitude_bins

    def draw(self, x: torch.Tensor, generator: torch.Generator | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ops, magnitudes, signed = self.table(x)
        u = rand(x.shape[0], x, generator, 3)  # per sample: the operation, the magnitude bin, the sign
        k, b = _index(u[:, 0], len(ops)), _index(u[:, 1], self.num_magnitude_bins)
        return [(ops[k], _signed(magnitudes[k, b], signed[k], u[:, 2]))]

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        from torchvision.transforms import v2

        t = v2.TrivialAugmentWide(self.num_magnitude_bins, interpolation=self.interpolation)
        return self._maybe_random_apply(t)


class AutoAugment(_Policy):
    """AutoAugment: each sample one of the policy's 25 sub-policies (two operations, each with its probability).

    Args:
        policy: the learned policy: ``"imagenet"``, ``"cifar10"`` or ``"svhn"``.
        interpolation: ``"nearest"`` (torchvision's default) or ``"bilinear"``.
        p: probability of augmenting each sample.
    """

    kind = "autoaugment"

    def __init__(
        self, policy: AutoAugmentPolicyName = "imagenet", interpolation: Interpolation = "nearest", p: float = 1.0
    ) -> None:
        super().__init__(interpolation, p)
        self.policy = check_choice("policy", policy, AUTOAUGMENT_POLICIES)
        self._sub_policies: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._steps: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _torchvision(self) -> Any:
        from torchvision.transforms import v2

        return v2.AutoAugment(v2.AutoAugmentPolicy(self.policy), interpolation=self.interpolation)

    def sub_policies(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sub-policies as ``[S, 2]`` tensors: row of the op table, probability, magnitude bin."""
        if self._sub_policies is not None:
            return self._sub_policies
        names = list(_space(self.kind))
        # torchvision's list of the policy's sub-policies (private; see docs/architecture.md).
        rows = self._torchvision()._policies
        row = torch.tensor([[names.index(name) for name, _, _ in sub] for sub in rows])
        prob = torch.tensor([[float(q) for _, q, _ in sub] for sub in rows])
        bins = torch.tensor([[b or 0 for _, _, b in sub] for sub in rows])
        self._sub_policies = (row, prob, bins)
        return self._sub_policies

    def steps_table(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each sub-policy's two steps as ``[S, 2]`` tensors on ``x``'s device, for ``x``'s size (cached).

        Returns:
            The operation (an index into ``OP_NAMES``), its probability, its magnitude and whether it takes a sign.
        """
        h, w = x.shape[-2:]
        key = (h, w, str(x.device))
        if key not in self._steps:
            ops, magnitudes, signed = self.table(x)
            row, prob, bins = (t.to(x.device) for t in self.sub_policies())
            self._steps[key] = (ops[row], prob, magnitudes[row, bins], signed[row])
        return self._steps[key]

    def draw(self, x: torch.Tensor, generator: torch.Generator | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ops, prob, magnitudes, signed = self.steps_table(x)
        u = rand(x.shape[0], x, generator, 5)  # per sample: the sub-policy; per step: applied?, the sign
        s = _index(u[:, 0], ops.shape[0])
        op = ops[s] * (u[:, 1:3] <= prob[s])  # 0 (Identity) where the step is not applied
        magnitude = _signed(magnitudes[s], signed[s], u[:, 3:5])
        return [(op[:, j], magnitude[:, j]) for j in range(ops.shape[1])]

    def to_torchvision(self, size: tuple[int, int]) -> Any:
        return self._maybe_random_apply(self._torchvision())
