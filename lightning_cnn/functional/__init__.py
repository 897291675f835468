"""Pure tensor math, no Lightning: merging predictions (TTA views, ensemble members) and the views' kernels.

Merging functions take a stack of logits ``[K, B, C]`` (``K`` views or members, ``B`` samples, ``C``
classes) and work on log-probabilities (``log_softmax``), never on raw logits: an infinite logit gives
a finite answer instead of a NaN, and the geometric mean is a stable ``softmax(mean(log_softmax))``.
View kernels take images ``[B, C, H, W]`` and return one deterministic view of them.
"""

from lightning_cnn.functional.merge import (
    MERGE_MODES,
    MergeMode,
    ensemble_average,
    majority_vote,
    merge_log_probs,
    merge_predictions,
    vote_counts,
)
from lightning_cnn.functional.multilabel import labels_above, merge_label_probs
from lightning_cnn.functional.views import (
    CORNERS,
    Corner,
    anti_transpose,
    corner_crop,
    crop_size,
    hflip,
    hflip_corner_crop,
    identity,
    resize,
    rotate90,
    shift,
    transpose,
    vflip,
    zoom_in,
    zoom_out,
)

__all__ = [
    "CORNERS",
    "MERGE_MODES",
    "Corner",
    "MergeMode",
    "anti_transpose",
    "corner_crop",
    "crop_size",
    "ensemble_average",
    "hflip",
    "hflip_corner_crop",
    "identity",
    "labels_above",
    "majority_vote",
    "merge_label_probs",
    "merge_log_probs",
    "merge_predictions",
    "resize",
    "rotate90",
    "shift",
    "transpose",
    "vflip",
    "vote_counts",
    "zoom_in",
    "zoom_out",
]
