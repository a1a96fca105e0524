"""The storage port."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

#: A stored file's key: the day it was stored, and a random name. Nothing else is ever served.
KEY_RE = re.compile(r"^(?P<day>\d{8})/(?P<name>[0-9a-f]{32})\.(?P<ext>mp4|webp|png|jpg)$")

CONTENT_TYPES = {"mp4": "video/mp4", "webp": "image/webp", "png": "image/png", "jpg": "image/jpeg"}


def is_valid_key(key: str) -> bool:
    return KEY_RE.match(key) is not None


class Storage(Protocol):
    async def put(self, source: Path, extension: str) -> str:
        """Move `source` into storage under a new key and return the key."""
        ...

    def local_path(self, key: str) -> Path | None:
        """Where a stored key's bytes are on this machine, or None for an invalid or missing key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a stored file. Idempotent: a key already gone (or never valid) is not an error."""
        ...
