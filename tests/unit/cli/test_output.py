"""What the command line prints: notices filtered by their exact text, and the model summary's rows."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.utilities.rank_zero import rank_zero_info

from lightning_cnn.cli.output import LIGHTNING_TIPS, RANK_ZERO_LOGGER, ModelSummaryTable, quiet_known_notices

LEAFSPEC = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and treespec.is_leaf()`"
SUMMARY = [
    (" ", ["0", "1"]),
    ("Name", ["net", "head"]),
    ("Type", ["Sequential", "Linear"]),
    ("Params", ["74.8 K", "1.3 K"]),
    ("Mode", ["train", "train"]),
    ("FLOPs", ["0", "0"]),
]


def test_only_the_leafspec_deprecation_is_filtered():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_notices()
        warnings.warn(LEAFSPEC + " instead.", FutureWarning, stacklevel=1)
        warnings.warn(LEAFSPEC + " instead.", DeprecationWarning, stacklevel=1)
        warnings.warn("`isinstance(x, LeafSpec)` elsewhere is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("another deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "`isinstance(x, LeafSpec)` elsewhere is deprecated",
        "another deprecation",
    ]


def test_only_the_cloud_tips_are_filtered(caplog):
    quiet_known_notices()
    quiet_known_notices()  # once is enough: no second filter
    logger = logging.getLogger(RANK_ZERO_LOGGER)
    assert len(logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=RANK_ZERO_LOGGER):
        for tip in LIGHTNING_TIPS:
            rank_zero_info(tip + " to enable it.")
        rank_zero_info("💡 Tip: something else entirely")
        rank_zero_info("GPU available: False, used: False")
    assert caplog.messages == ["💡 Tip: something else entirely", "GPU available: False, used: False"]


def test_the_summary_drops_flops_nothing_counted(capsys):
    ModelSummaryTable.summarize(SUMMARY, 76100, 76100, 0.3, {"train": 2, "eval": 0}, 0)
    out = capsys.readouterr().out
    assert (
        "FLOPs" not in out
        and "Total params: 76.1 K" in out
        and "Sequential" in out
        and "Modules in train mode: 2" in out
    )


def test_the_summary_keeps_counted_flops(capsys):
    counted = [*SUMMARY[:-1], ("FLOPs", ["1.2 M", "2.6 K"]), ("In sizes", ["[1, 1, 8, 8]", "[1, 128]"])]
    ModelSummaryTable.summarize(counted, 76100, 70000, 0.3, {"train": 2, "eval": 0}, 1_202_600)
    out = capsys.readouterr().out
    assert "FLOPs" in out and "1.2 M" in out and "Total FLOPs: 1.2 M" in out and "[1, 1, 8, 8]" in out
    assert "Non-trainable params: 6.1 K" in out
