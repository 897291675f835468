"""Each loss against a value computed by hand (plain Python math, no torch loss function) to 1e-6."""

from __future__ import annotations

import math
import re

import pytest
import torch

from lightning_cnn.losses import LOSSES, ClassificationLoss, LossMixture, build_loss

LOGITS = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]
LABELS = [0, 1]
SOFT = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
MULTI = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
K = 3


def softmax(row: list[float]) -> list[float]:
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def one_hot(label: int) -> list[float]:
    return [1.0 if k == label else 0.0 for k in range(K)]


P = [softmax(r) for r in LOGITS]
Y1 = [one_hot(c) for c in LABELS]


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def hand_cross_entropy(eps: float = 0.0) -> float:
    # smoothed target q = (1 - eps) * one_hot + eps / K; loss = -sum_k q_k log p_k, mean over the batch
    total = 0.0
    for p, y in zip(P, Y1, strict=True):
        total += -sum(((1 - eps) * t + eps / K) * math.log(pk) for pk, t in zip(p, y, strict=True))
    return total / len(P)


def hand_weighted_cross_entropy(w: list[float]) -> float:
    num = sum(w[c] * -math.log(p[c]) for p, c in zip(P, LABELS, strict=True))
    return num / sum(w[c] for c in LABELS)


def hand_sigmoid_cross_entropy(targets: list[list[float]], pos_weight: float = 1.0) -> float:
    terms = [
        -(pos_weight * t * math.log(sigmoid(z)) + (1 - t) * math.log(1 - sigmoid(z)))
        for row, trow in zip(LOGITS, targets, strict=True)
        for z, t in zip(row, trow, strict=True)
    ]
    return sum(terms) / len(terms)


def hand_kl(targets: list[list[float]]) -> float:
    total = sum(
        t * math.log(t / pk) for p, trow in zip(P, targets, strict=True) for pk, t in zip(p, trow, strict=True) if t > 0
    )
    return total / len(P)  # "batchmean"


def hand_pseudo_huber(delta: float) -> float:
    terms = [
        delta**2 * (math.sqrt(1 + ((pk - t) / delta) ** 2) - 1)
        for p, y in zip(P, Y1, strict=True)
        for pk, t in zip(p, y, strict=True)
    ]
    return sum(terms) / len(terms)


def hand_l1() -> float:
    return sum(abs(pk - t) for p, y in zip(P, Y1, strict=True) for pk, t in zip(p, y, strict=True)) / (len(P) * K)


def hand_mse() -> float:
    return sum((pk - t) ** 2 for p, y in zip(P, Y1, strict=True) for pk, t in zip(p, y, strict=True)) / (len(P) * K)


def value(loss: torch.nn.Module, target: list) -> float:
    logits = torch.tensor(LOGITS, dtype=torch.float64)
    t = torch.tensor(target, dtype=torch.float64 if isinstance(target[0], list) else torch.int64)
    return loss(logits, t).item()


@pytest.mark.parametrize(
    ("loss", "target", "expected"),
    [
        (ClassificationLoss("cross_entropy"), LABELS, hand_cross_entropy()),
        (ClassificationLoss("cross_entropy", label_smoothing=0.1), LABELS, hand_cross_entropy(0.1)),
        (ClassificationLoss("cross_entropy"), Y1, hand_cross_entropy()),  # one-hot float targets
        (
            ClassificationLoss("weighted_cross_entropy", class_weights=[2.0, 0.5, 1.0]),
            LABELS,
            hand_weighted_cross_entropy([2.0, 0.5, 1.0]),
        ),
        (ClassificationLoss("sigmoid_cross_entropy"), LABELS, hand_sigmoid_cross_entropy(Y1)),  # one-vs-all
        (ClassificationLoss("sigmoid_cross_entropy"), MULTI, hand_sigmoid_cross_entropy(MULTI)),  # multi-label
        (
            ClassificationLoss("sigmoid_cross_entropy", pos_weight=3.0),
            MULTI,
            hand_sigmoid_cross_entropy(MULTI, pos_weight=3.0),
        ),
        (ClassificationLoss("kl_div"), SOFT, hand_kl(SOFT)),
        (ClassificationLoss("kl_div"), LABELS, hand_kl(Y1)),  # = cross-entropy for one-hot targets
        (ClassificationLoss("pseudo_huber", delta=0.5), LABELS, hand_pseudo_huber(0.5)),
        (ClassificationLoss("pseudo_huber"), LABELS, hand_pseudo_huber(1.0)),
        (ClassificationLoss("l1"), LABELS, hand_l1()),
        (ClassificationLoss("mse"), LABELS, hand_mse()),
        (LossMixture({"cross_entropy": 1.0, "mse": 0.5}), LABELS, hand_cross_entropy() + 0.5 * hand_mse()),
        (
            build_loss({"kl_div": 0.25, "l1": 2.0, "pseudo_huber": 1.0}),
            LABELS,
            0.25 * hand_kl(Y1) + 2.0 * hand_l1() + hand_pseudo_huber(1.0),
        ),
    ],
    ids=lambda v: repr(v) if isinstance(v, torch.nn.Module) else None,
)
def test_loss_matches_hand_computation(loss, target, expected):
    assert value(loss, target) == pytest.approx(expected, abs=1e-6)


def test_hand_values_are_not_degenerate():
    # the hand formulas above differ from each other, so a swapped implementation would be caught
    values = [hand_cross_entropy(), hand_cross_entropy(0.1), hand_sigmoid_cross_entropy(Y1), hand_l1(), hand_mse()]
    assert len({round(v, 6) for v in values}) == len(values)
    assert hand_cross_entropy() == pytest.approx(0.5 * (-math.log(P[0][0]) - math.log(P[1][1])))
    assert hand_cross_entropy() == pytest.approx(hand_kl(Y1))


def test_float32_matches_too():
    loss = ClassificationLoss("cross_entropy", label_smoothing=0.1)
    got = loss(torch.tensor(LOGITS), torch.tensor(LABELS)).item()
    assert got == pytest.approx(hand_cross_entropy(0.1), abs=1e-6)


def test_build_loss_by_name_and_mapping():
    assert isinstance(build_loss("mse"), ClassificationLoss)
    assert isinstance(build_loss({"mse": 1.0}), ClassificationLoss)  # one name at weight 1 is the plain loss
    mix = build_loss({"cross_entropy": 1.0, "mse": 0.5})
    assert isinstance(mix, LossMixture) and mix.weights == {"cross_entropy": 1.0, "mse": 0.5}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_loss("crossentropy"), re.escape(f"Expected loss to be one of {LOSSES}, but got 'crossentropy'")),
        (lambda: build_loss({"cross_entropy": 1.0, "msee": 0.5}), "but got 'msee'"),
        (lambda: build_loss({}), "at least one loss"),
        (lambda: build_loss({"mse": -1.0}), r"Expected loss\['mse'\] to be >= 0"),
        (lambda: build_loss("weighted_cross_entropy"), "needs class_weights"),
        (lambda: build_loss("weighted_cross_entropy", class_weights=[1.0, -2.0]), "class_weights to be a list"),
        (lambda: build_loss("cross_entropy", label_smoothing=1.0), r"label_smoothing to be in \[0, 1\)"),
        (lambda: build_loss("pseudo_huber", delta=0.0), "huber_delta to be > 0"),
        (
            lambda: build_loss("weighted_cross_entropy", class_weights=[1.0, 2.0], num_classes=3),
            re.escape(
                "Expected class_weights to be a list of num_classes=3 numbers >= 0, but got [1.0, 2.0] (2 numbers)."
            ),
        ),
        (
            lambda: build_loss("sigmoid_cross_entropy", pos_weight=[1.0, 2.0, 3.0, 4.0], num_classes=3),
            re.escape("Expected pos_weight to be a number >= 0 or a list of num_classes=3 numbers >= 0, but got"),
        ),
        (lambda: build_loss("sigmoid_cross_entropy", pos_weight=-1.0), "Expected pos_weight to be a number >= 0"),
        (lambda: build_loss("weighted_cross_entropy", class_weights=2.0), "Expected class_weights to be a list"),
        (lambda: build_loss("weighted_cross_entropy", class_weights=[[1.0]]), "Expected class_weights to be a list"),
        (lambda: build_loss("weighted_cross_entropy", class_weights=[1.0, float("nan")]), "class_weights to be a"),
    ],
)
def test_bad_loss_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_weights_that_are_no_numbers_are_a_type_error():
    with pytest.raises(TypeError, match=r"Expected class_weights to be a list of numbers >= 0, but got \['a', 'b'\]"):
        build_loss("weighted_cross_entropy", class_weights=["a", "b"])
    with pytest.raises(TypeError, match="Expected pos_weight to be a number >= 0 or a list"):
        build_loss("sigmoid_cross_entropy", pos_weight="balanced")


def test_weights_of_the_right_length_are_kept():
    loss = build_loss("weighted_cross_entropy", class_weights=[1, 2, 3], num_classes=3)
    assert loss.class_weights.tolist() == [1.0, 2.0, 3.0]
    mix = build_loss({"sigmoid_cross_entropy": 1.0, "mse": 0.5}, pos_weight=2.0, num_classes=3)
    assert mix.losses["sigmoid_cross_entropy"].pos_weight.item() == 2.0
