"""Open video models through diffusers (see `backend.py`). Needs the `gpu` extra: `pip install 'reelgate[gpu]'`.

Named `diffusion`, not `diffusers`, so that it never shadows the library. Importing it imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelgate.backends.diffusion.config import DiffusionConfig, parse

if TYPE_CHECKING:
    from reelgate.backends.diffusion.backend import DiffusionBackend
    from reelgate.catalog import ModelEntry
    from reelgate.settings import Settings

__all__ = ["DiffusionConfig", "from_settings", "parse"]


def from_settings(name: str, settings: Settings, entries: list[ModelEntry]) -> DiffusionBackend:
    """The registry's factory: one loaded pipeline for every model that names backend `name`."""
    from reelgate.backends.diffusion.backend import DiffusionBackend
    from reelgate.backends.diffusion.warmup import served_by

    configs = [parse(name, entry.options) for entry in entries]
    if any(config != configs[0] for config in configs[1:]):
        models = ", ".join(repr(entry.name) for entry in entries)
        raise ValueError(f"models {models} share backend {name!r} and so must have the same options")
    return DiffusionBackend(name, configs[0], preset=settings.x264_preset, served=served_by(entries))
