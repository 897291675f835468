"""StreamingDataModule in training: the test accuracy of the array source, and disjoint DDP shards (gloo, 2 CPUs)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from lightning_cnn import ArrayDataModule, SimpleCNN, StreamingDataModule
from lightning_cnn.convert import convert_dataset
from lightning_cnn.data.digits import load_digit_arrays
from tests.helpers.ddp import free_port, join_as_torchrun_rank
from tests.helpers.streaming import indexed_npz, sample_ids

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}


def _test_accuracy(datamodule, tmp_path: Path) -> float:
    pl.seed_everything(0, verbose=False)
    model = SimpleCNN(channels=(16, 32), hidden=(64,), lr=3e-3)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", deterministic=True, default_root_dir=tmp_path, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    return trainer.test(model, datamodule=datamodule, verbose=False)[0]["test/acc"]


@pytest.mark.slow
def test_streaming_digits_reach_the_array_sources_test_accuracy(tmp_path):
    root = str(convert_dataset("digits", str(tmp_path / "digits"), num_workers=2))
    images, labels = load_digit_arrays()
    arrays = _test_accuracy(ArrayDataModule((images / 16.0).astype(np.float32)[:, None], labels), tmp_path)
    seeded = _test_accuracy(StreamingDataModule(root), tmp_path)
    assert arrays > 0.75  # one epoch learns
    assert abs(seeded - arrays) <= 0.005  # the same samples in the same order: the same run
    streamed = _test_accuracy(StreamingDataModule(root, order="streaming"), tmp_path)
    assert streamed > 0.75  # litdata's order, another run of the same recipe


class _Recorder(pl.Callback):
    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.setdefault(trainer.current_epoch, []).extend(sample_ids(batch[0]))


def _worker(rank: int, root: str, out: str, port: int) -> None:
    join_as_torchrun_rank(rank, port)
    seen = {}
    for order in ("streaming", "seeded"):
        recorder = _Recorder()
        dm = StreamingDataModule(root, order=order, normalize="none", batch_size=8)
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp",
            max_epochs=2,
            callbacks=[recorder],
            default_root_dir=out,
            **QUIET,
        )
        torch.manual_seed(0)
        trainer.fit(SimpleCNN(num_classes=4, channels=(4,), hidden=(), lr=1e-3), datamodule=dm)
        seen[order] = {"epochs": recorder.seen, "train": dm.split["train"].tolist()}
    Path(out, f"rank{rank}.json").write_text(json.dumps(seen))


@pytest.mark.ddp
def test_each_rank_reads_its_own_samples(tmp_path):
    root = str(convert_dataset(indexed_npz(tmp_path / "i.npz"), str(tmp_path / "data"), chunk_bytes="1kB"))
    mp.spawn(_worker, args=(root, str(tmp_path), free_port()), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for order in ("streaming", "seeded"):
        train = set(ranks[0][order]["train"])
        assert ranks[1][order]["train"] == ranks[0][order]["train"]  # one split on every rank
        for epoch in ("0", "1"):
            first, second = (ranks[r][order]["epochs"][epoch] for r in (0, 1))
            assert len(first) == len(second) == len(set(first)) > 0
            assert not set(first) & set(second), order  # disjoint shards
            assert set(first) | set(second) <= train
            assert len(train) - len(first) - len(second) < 2 * 8, order  # at most the dropped remainder is unread
        assert ranks[0][order]["epochs"]["0"] != ranks[0][order]["epochs"]["1"]  # each epoch reshuffles
