"""Test-time augmentation without Lightning: named views of a batch, and a model wrapper that merges them.

:class:`TTAModel` wraps any classifier ``nn.Module``; the
:class:`~lightning_cnn.callbacks.tta.TestTimeAugmentation` callback builds one and runs it in a Trainer's loops.
"""

from lightning_cnn.tta.views import PRESETS, VIEW_NAMES, View, ViewName, make_views
from lightning_cnn.tta.wrapper import TTAModel, is_dropout

__all__ = ["PRESETS", "VIEW_NAMES", "TTAModel", "View", "ViewName", "is_dropout", "make_views"]
