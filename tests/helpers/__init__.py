"""Helpers that subprocess runs of the command line import by class path (``PYTHONPATH`` = the repository)."""
