"""The ``lightning-cnn`` command line: a LightningCLI with SimpleCNN on digits as its defaults.

``main`` is the entry point, ``CNNCli`` the LightningCLI subclass, ``DEFAULT_RUN`` what ``lightning-cnn`` runs with no
arguments.
"""

from lightning_cnn.cli.app import CNNCli
from lightning_cnn.cli.entry import DEFAULT_RUN, main

__all__ = ["DEFAULT_RUN", "CNNCli", "main"]
