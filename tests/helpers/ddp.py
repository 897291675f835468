"""Pieces of the DDP tests: a free port, and the environment torchrun gives each process."""

from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_as_torchrun_rank(rank: int, port: int, world_size: int = 2) -> None:
    """Set torchrun's variables, so a Trainer with ``strategy="ddp"`` joins the group instead of launching one."""
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(world_size),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "NODE_RANK": "0",
        }
    )
    torch.set_num_threads(1)
