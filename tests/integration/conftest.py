from __future__ import annotations

import pytest
import torch.distributed as dist


@pytest.fixture(autouse=True)
def _no_leftover_process_group():
    """A test that joined a process group leaves none behind for the next test in this worker."""
    yield
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
