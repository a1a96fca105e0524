"""The offline procedural renderer (see `backend.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelgate.backends.procedural.backend import ProceduralBackend
from reelgate.backends.procedural.captions import warn_without_cjk_font

if TYPE_CHECKING:
    from reelgate.catalog import ModelEntry
    from reelgate.settings import Settings

__all__ = ["ProceduralBackend", "from_settings"]


def from_settings(name: str, settings: Settings, entries: list[ModelEntry]) -> ProceduralBackend:
    """The registry's factory: one renderer for every model that names `procedural`."""
    processes = settings.worker_slots if settings.render_processes is None else settings.render_processes
    backend = ProceduralBackend(preset=settings.x264_preset, font_path=settings.font_path, processes=processes)
    warn_without_cjk_font(backend.fonts)
    return backend
