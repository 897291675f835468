"""timm's optimizers by name: the naming rule, parameter groups kept, lazy import, refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from lightning_cnn import SimpleCNN
from lightning_cnn.optim import (
    DEFAULT_LR,
    OPTIMIZER_NAMES,
    TIMM_DEFAULT_LR,
    TIMM_OPTIMIZER_NAMES,
    TORCH_OPTIMIZER_NAMES,
    build_optimizer,
    param_groups,
)
from lightning_cnn.optim.timm_optimizers import timm_name


def small_cnn() -> nn.Module:
    return SimpleCNN(channels=(4, 8), hidden=(16, 12)).net


def expected_names() -> tuple[str, ...]:
    """timm's registry by this project's rule: no APEX/bitsandbytes, no aliases, no cautious or corrected variants."""
    from timm.optim import get_optimizer_info, list_optimizers

    names = []
    for n in list_optimizers():
        info = get_optimizer_info(n)
        flags = info.defaults or {}
        if (
            n.startswith(("fused", "bnb"))
            or info.name != n
            or flags.get("caution")
            or flags.get("corrected_weight_decay")
        ):
            continue
        names.append(f"timm:{n}" if n in TORCH_OPTIMIZER_NAMES else n)
    return tuple(sorted(names))


def test_the_names_are_timms_registry_by_the_documented_rule():
    assert tuple(sorted(TIMM_OPTIMIZER_NAMES)) == expected_names()


def test_no_name_collides_with_a_torch_optimizer():
    assert not set(TIMM_OPTIMIZER_NAMES) & set(TORCH_OPTIMIZER_NAMES)
    for name in TIMM_OPTIMIZER_NAMES:
        assert (timm_name(name) in TORCH_OPTIMIZER_NAMES) == name.startswith("timm:"), name
    assert OPTIMIZER_NAMES == TORCH_OPTIMIZER_NAMES + TIMM_OPTIMIZER_NAMES
    assert {n: DEFAULT_LR[n] for n in TIMM_OPTIMIZER_NAMES} == TIMM_DEFAULT_LR


TRAINABLE = [n for n in TIMM_OPTIMIZER_NAMES if n not in ("adahessian", "kron", "kronw")]


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_timm_optimizer_keeps_the_groups_and_takes_a_step(name):
    torch.manual_seed(0)
    net = small_cnn()
    opt = build_optimizer(name, net, weight_decay=0.01)
    from timm.optim import get_optimizer_class

    assert isinstance(opt, get_optimizer_class(timm_name(name), bind_defaults=False))
    ours = {id(p): g["weight_decay"] for g in param_groups(net, 0.01) for p in g["params"]}
    got = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert got == ours  # every trainable tensor once, norms and biases without decay
    assert {g["lr"] for g in opt.param_groups} == {TIMM_DEFAULT_LR[name]}
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(2):  # ADOPT's first step only estimates the second moment
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.randn(8, 1, 8, 8)), torch.arange(8)).backward()
        opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))


def test_timm_muon_sends_only_norms_biases_and_the_output_layer_to_its_fallback():
    net = small_cnn()
    opt = build_optimizer("timm:muon", net, weight_decay=0.01)
    out = net[-1] if isinstance(net[-1], nn.Linear) else [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    fallback = {id(p) for g in opt.param_groups if g.get("use_fallback") for p in g["params"]}
    assert {id(out.weight), id(out.bias)} <= fallback
    convs = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and not {id(w) for w in convs} & fallback  # conv filters are orthogonalized (flattened)


def test_a_timm_optimizer_takes_its_options():
    opt = build_optimizer("lion", small_cnn(), lr=3e-4, options={"betas": (0.8, 0.9)})
    assert opt.defaults["betas"] == (0.8, 0.9) and opt.param_groups[0]["lr"] == 3e-4


def test_a_misspelt_name_suggests_the_closest():
    with pytest.raises(
        ValueError, match=r"Expected optimizer to be one of \(.*'lion'.*\), but got 'lino'\. Did you mean"
    ):
        build_optimizer("lino", small_cnn())


def test_adahessian_is_refused_naming_why_and_the_replacements():
    with pytest.raises(ValueError, match=r"optimizer='adahessian' needs .*create_graph=True.*use optimizer='adan'"):
        build_optimizer("adahessian", small_cnn())


def test_a_module_trains_with_a_timm_optimizer_by_name():
    model = SimpleCNN(channels=(4,), hidden=(), optimizer="lamb", weight_decay=0.05)
    opt = model.configure_optimizers()
    assert type(opt).__name__ == "Lamb" and opt.param_groups[0]["weight_decay"] == 0.05


def test_timm_optim_loads_only_when_a_timm_optimizer_is_built():
    code = (
        "import sys, lightning_cnn\n"
        "from lightning_cnn.optim import build_optimizer\n"
        "from torch import nn\n"
        "build_optimizer('adamw', nn.Linear(2, 2))\n"
        "print('timm.optim' in sys.modules)\n"
        "build_optimizer('lion', nn.Linear(2, 2))\n"
        "print('timm.optim' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
