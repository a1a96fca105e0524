"""Backend kinds by name: the catalog says `backend = "procedural"` (or `"kind:instance"`), this makes it.

A catalog entry's `backend` is the name tasks are stored with; its part before a colon is the kind.
Each kind has a factory here, imported only when a catalog uses it, so the base install stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reelgate.backends.base import Backend
    from reelgate.catalog import ModelEntry
    from reelgate.settings import Settings

Factory = Callable[[str, "Settings", "list[ModelEntry]"], "Backend"]

#: kind -> "module:function"; the function takes (name, settings, the entries using the name).
FACTORIES: dict[str, str] = {
    "procedural": "reelgate.backends.procedural:from_settings",
    "openai-videos": "reelgate.backends.relay:from_settings",
    "chat-relay": "reelgate.backends.relay:from_settings",
    "veo": "reelgate.backends.relay:from_settings",
    "kling": "reelgate.backends.relay:from_settings",
    "dashscope": "reelgate.backends.relay:from_settings",
    "ark": "reelgate.backends.relay:from_settings",
    "minimax": "reelgate.backends.relay:from_settings",
    "replicate": "reelgate.backends.relay:from_settings",
    "fal": "reelgate.backends.relay:from_settings",
    "diffusers": "reelgate.backends.diffusion:from_settings",
}


def kind_of(name: str) -> str:
    return name.split(":", 1)[0]


def make_backend(name: str, settings: Settings, entries: list[ModelEntry]) -> Backend:
    """The backend `name` names; ValueError for an unknown kind."""
    target = FACTORIES.get(kind_of(name))
    if target is None:
        models = ", ".join(repr(entry.name) for entry in entries)
        raise ValueError(f"model {models}: unknown backend {name!r} (known kinds: {', '.join(sorted(FACTORIES))})")
    module, _, function = target.partition(":")
    factory: Factory = getattr(import_module(module), function)
    return factory(name, settings, entries)
