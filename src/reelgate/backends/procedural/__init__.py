"""The offline procedural renderer (see `backend.py`)."""

from reelgate.backends.procedural.backend import ProceduralBackend

__all__ = ["ProceduralBackend"]
