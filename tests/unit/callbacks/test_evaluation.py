"""The evaluation base's scores: a MetricCollection whose numbers equal independent computations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from lightning_cnn.callbacks.evaluation import EVAL_STAGES, make_scores, update_scores


def test_scores_equal_accuracy_nll_and_ece_computed_directly():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(64, 5, generator=g) * 2, torch.randint(0, 5, (64,), generator=g)
    log_p = logits.log_softmax(-1)
    scores = make_scores(5)
    for part in range(0, 64, 16):  # batch by batch
        update_scores(scores, log_p[part : part + 16], labels[part : part + 16])
    got = scores.compute()
    assert set(got) == {"acc", "nll", "ece"}
    torch.testing.assert_close(got["acc"], (log_p.argmax(-1) == labels).float().mean())
    torch.testing.assert_close(got["nll"], F.nll_loss(log_p, labels))
    ece = multiclass_calibration_error(log_p.exp(), labels, num_classes=5, n_bins=15, norm="l1")
    torch.testing.assert_close(got["ece"], ece)
    assert set(make_scores(5, ece=False).keys()) == {"acc", "nll"}
    assert EVAL_STAGES == ("val", "test", "predict")
