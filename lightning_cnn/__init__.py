"""lightning_cnn: configurable, tested PyTorch Lightning pieces for training CNN image classifiers."""

import atexit as _atexit

from lightning_cnn import callbacks, data, models
from lightning_cnn import functional as functional
from lightning_cnn._utils.distributed import leave_process_group as _leave_process_group
from lightning_cnn.callbacks import *  # noqa: F403
from lightning_cnn.checkpoint import AtomicCheckpointIO  # noqa: F401
from lightning_cnn.data import *  # noqa: F403
from lightning_cnn.inference import Classification, classify, load_classifier  # noqa: F401
from lightning_cnn.losses import build_loss  # noqa: F401
from lightning_cnn.models import *  # noqa: F403
from lightning_cnn.optim import build_optimizer, build_scheduler  # noqa: F401
from lightning_cnn.recipes import stage_sweep  # noqa: F401

# Every process that imports the package (Lightning's spawned workers unpickle its classes) leaves its group at exit.
_atexit.register(_leave_process_group)

__version__ = "0.1.0"

__all__ = sorted(
    [
        "AtomicCheckpointIO",
        "Classification",
        "__version__",
        "build_loss",
        "build_optimizer",
        "build_scheduler",
        "classify",
        "functional",
        "load_classifier",
        "stage_sweep",
        *callbacks.__all__,
        *data.__all__,
        *models.__all__,
    ]
)
