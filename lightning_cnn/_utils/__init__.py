"""Helpers shared by every layer: argument checks, distributed gathers, atomic files, batch unpacking.

Nothing here imports Lightning; every module of the package may import from here (and only from here may
one module import another's helpers).
"""
