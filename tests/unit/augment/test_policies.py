"""RandAugment, TrivialAugment, AutoAugment: batched, per sample, and the same as torchvision's.

Each operation alone against torchvision's own on the same images; the operations and magnitudes drawn
over many samples against those torchvision draws over as many images; seeds, per-sample draws, no
in-place change; the per-sample torchvision twin on float images of one and three channels.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from lightning_cnn.augment import AutoAugment, RandAugment, TrivialAugment, build_augmentation
from lightning_cnn.augment.policies import magnitude_table
from lightning_cnn.augment.policy_ops import GEOMETRIC_OPS, OP_NAMES, apply_op, apply_ops
from lightning_cnn.data.digits import load_digit_arrays

KINDS = {"randaugment": 31, "trivialaugment": 31, "autoaugment": 10}


def _digits(n: int, size: int = 16) -> torch.Tensor:
    images, _ = load_digit_arrays()
    x = torch.from_numpy(images[:n].astype(np.float32) / 16.0).unsqueeze(1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _reference(image: torch.Tensor, name: str, magnitude: float, interpolation: str) -> torch.Tensor:
    tv = v2.TrivialAugmentWide()  # any of the three: they share torchvision's operation code
    return tv._apply_image_or_video_transform(image, name, magnitude, interpolation=interpolation, fill=tv._fill)


def _cases():
    for kind, bins in KINDS.items():
        for channels in (1, 3):
            yield kind, bins, channels


@pytest.mark.parametrize(("kind", "bins", "channels"), list(_cases()))
def test_each_operation_alone_matches_torchvision(kind, bins, channels):
    torch.manual_seed(0)
    images = _digits(2) if channels == 1 else torch.rand(2, 3, 20, 16)
    h, w = images.shape[-2:]
    ops, magnitudes, signed = magnitude_table(kind, bins, h, w)
    checked = set()
    for k, op in enumerate(ops.tolist()):
        name = OP_NAMES[op]
        bins_here = magnitudes[k].unique()
        bins_here = bins_here[torch.linspace(0, len(bins_here) - 1, min(len(bins_here), 4)).round().long()]
        values = [float(m) * s for m in bins_here for s in ((1, -1) if signed[k] else (1,))]
        # One batch: every image at every magnitude of this operation, each sample its own.
        batch = images.repeat(len(values), 1, 1, 1)
        per_sample = torch.tensor(values).repeat_interleave(len(images))
        for interpolation in ("nearest", "bilinear") if name in GEOMETRIC_OPS else ("nearest",):
            mine = apply_op(batch, name, per_sample, interpolation)
            ref = torch.stack(
                [_reference(im, name, float(m), interpolation) for im, m in zip(batch, per_sample, strict=True)]
            )
            diff = (mine - ref).abs()
            if name in ("ShearX", "ShearY", "Rotate") and interpolation == "nearest":
                # Nearest-neighbour ties (a sample point half-way between two pixels) fall either way.
                assert (diff > 1e-4).float().mean() <= 0.03, (kind, name)
            else:
                assert diff.max() <= 1e-4, (kind, name, interpolation, diff.max())
            checked.add(name)
    assert checked == {OP_NAMES[i] for i in ops.tolist()}


def _record_torchvision(transform, image: torch.Tensor, draws: int) -> list[list[tuple[str, float]]]:
    calls: list[list[tuple[str, float]]] = []

    def record(img, transform_id, magnitude, interpolation, fill):
        calls[-1].append((transform_id, float(magnitude)))
        return img

    transform._apply_image_or_video_transform = record
    torch.manual_seed(0)
    for _ in range(draws):
        calls.append([])
        transform(image)
    return calls


def _record_batched(policy, x: torch.Tensor) -> list[list[tuple[str, float]]]:
    params = policy.make_params(x, torch.Generator().manual_seed(1))
    steps = [(params[f"op{s}"], params[f"magnitude{s}"]) for s in range(sum(k.startswith("op") for k in params))]
    return [[(OP_NAMES[int(op[i])], float(m[i])) for op, m in steps] for i in range(x.shape[0])]


POLICIES = [
    (RandAugment(num_ops=2, magnitude=9), lambda: v2.RandAugment(2, 9)),
    (RandAugment(num_ops=1, magnitude=25, num_magnitude_bins=31), lambda: v2.RandAugment(1, 25, 31)),
    (TrivialAugment(), lambda: v2.TrivialAugmentWide()),
    (AutoAugment("imagenet"), lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)),
    (AutoAugment("cifar10"), lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)),
    (AutoAugment("svhn"), lambda: v2.AutoAugment(v2.AutoAugmentPolicy.SVHN)),
]


@pytest.mark.parametrize(
    ("policy", "make_torchvision"), POLICIES, ids=lambda p: repr(p) if isinstance(p, torch.nn.Module) else ""
)
def test_the_batched_draws_follow_torchvision_distribution(policy, make_torchvision):
    n = 4000
    x = torch.zeros(n, 3, 32, 32)
    ours = _record_batched(policy, x)
    theirs = _record_torchvision(make_torchvision(), x[0], n)

    def applied(draws):  # operations that change the image: torchvision does not call the skipped ones
        return [
            (name, m)
            for sample in draws
            for name, m in sample
            if not (name == "Identity" and policy.kind == "autoaugment")
        ]

    a, b = applied(ours), applied(theirs)
    freq_a, freq_b = Counter(name for name, _ in a), Counter(name for name, _ in b)
    assert set(freq_a) == set(freq_b)
    for name in freq_b:  # operations per image: binomial std about 0.008 at these counts; 0.03 is > 3 sigma
        assert abs(freq_a[name] / n - freq_b[name] / n) <= 0.03, (name, freq_a[name], freq_b[name])
    mags_a, mags_b = defaultdict(list), defaultdict(list)
    for name, m in a:
        mags_a[name].append(m)
    for name, m in b:
        mags_b[name].append(m)
    for name in freq_b:
        ma, mb = torch.tensor(mags_a[name]), torch.tensor(mags_b[name])
        if policy.kind == "trivialaugment":  # one of 31 bins and a sign: the same range, similar spread
            assert float(ma.min()) == pytest.approx(float(mb.min()), abs=1e-6)
            assert float(ma.max()) == pytest.approx(float(mb.max()), abs=1e-6)
            spread = max(float(mb.abs().max()), 1e-6)
            assert abs(float(ma.abs().mean() - mb.abs().mean())) <= 0.1 * spread, name
            assert _share_gap(ma < 0, mb < 0) <= _four_sigma(len(ma), len(mb)), name
        else:  # fixed bins: the same set of magnitudes, and the same share of negative ones
            assert set(ma.tolist()) == set(mb.tolist()), name
            assert _share_gap(ma < 0, mb < 0) <= _four_sigma(len(ma), len(mb)), name


def _share_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return abs(float(a.float().mean() - b.float().mean()))


def _four_sigma(na: int, nb: int) -> float:
    """Four standard deviations of the difference of two shares of coin flips (p = 0.5, the widest), na and nb draws.

    An operation drawn rarely (AutoAugment's Sharpness: about 60 times in 4000 images) has a wide bound; the
    common ones (hundreds of draws) about 0.1.
    """
    return 4 * (0.25 / na + 0.25 / nb) ** 0.5


def test_each_sample_draws_its_own_operations_and_the_seed_repeats_them():
    x = _digits(1).repeat(64, 1, 1, 1)
    for policy in (RandAugment(), TrivialAugment(), AutoAugment()):
        before = x.clone()
        y = policy(x, generator=torch.Generator().manual_seed(3))
        assert torch.equal(x, before)  # never in place
        assert torch.equal(y, policy(x, generator=torch.Generator().manual_seed(3)))
        assert not torch.equal(y, policy(x, generator=torch.Generator().manual_seed(4)))
        distinct = {tuple(img.flatten().tolist()) for img in y}
        assert len(distinct) > 10, policy  # one image, 64 samples: many different results
        assert y.dtype == x.dtype and 0 <= float(y.min()) and float(y.max()) <= 1
    torch.manual_seed(5)  # without a generator: the global stream, which a DataModule's state dict holds
    y = RandAugment()(x)
    torch.manual_seed(5)
    assert torch.equal(y, RandAugment()(x))


def test_p_leaves_the_other_samples_untouched():
    x = torch.rand(200, 3, 8, 8)
    params = RandAugment(p=0.3).make_params(x, torch.Generator().manual_seed(0))
    assert 0.2 < params["apply"].float().mean() < 0.4
    assert (params["op0"][~params["apply"]] == 0).all() and (params["op1"][~params["apply"]] == 0).all()
    y = RandAugment(p=0.3).transform(x, params)
    assert torch.equal(y[~params["apply"]], x[~params["apply"]])


def test_apply_ops_groups_samples_by_operation():
    x = torch.rand(6, 3, 8, 8)
    ops = torch.tensor([OP_NAMES.index(n) for n in ("Invert", "Identity", "Rotate", "Invert", "Posterize", "Rotate")])
    m = torch.tensor([0.0, 0.0, 30.0, 0.0, 2.0, -10.0])
    y = apply_ops(x, ops, m)
    for i in range(6):
        assert torch.allclose(y[i], apply_op(x[i : i + 1], OP_NAMES[int(ops[i])], m[i : i + 1])[0])


@pytest.mark.parametrize("spec", ["randaugment", "trivialaugment", "autoaugment", {"autoaugment": {"policy": "svhn"}}])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_torchvision_twin_takes_and_gives_float_images_in_0_1(spec, channels):
    aug = build_augmentation(spec)
    assert aug is not None
    twin = aug.to_torchvision((16, 16))
    torch.manual_seed(0)
    x = _digits(1)[0] if channels == 1 else torch.rand(3, 16, 16)
    outs = [twin(x) for _ in range(50)]
    assert all(o.dtype == torch.float32 and o.shape == x.shape for o in outs)
    assert all(0 <= float(o.min()) and float(o.max()) <= 1 for o in outs)
    assert sum(not torch.equal(o, x) for o in outs) > 25  # it does change the images


def test_options_reach_torchvision():
    assert RandAugment(num_ops=3, magnitude=5).to_torchvision((8, 8)).num_ops == 3
    t = build_augmentation({"autoaugment": {"policy": "cifar10", "p": 0.5}}).to_torchvision((8, 8)).transforms[0]
    assert isinstance(t, v2.RandomApply) and t.transforms[0].policy == v2.AutoAugmentPolicy.CIFAR10
    assert TrivialAugment(num_magnitude_bins=11).to_torchvision((8, 8)).num_magnitude_bins == 11
