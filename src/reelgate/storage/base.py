"""The storage port."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

#: A stored file's key: the day it was stored, and a random name. Nothing else is ever served.
KEY_RE = re.compile(r"^(?P<day>\d{8})/(?P<name>[0-9a-f]{32})\.(?P<ext>mp4|webp|png|jpg)$")

CONTENT_TYPES = {"mp4": "video/mp4", "webp": "image/webp", "png": "image/png", "jpg": "image/jpeg"}


def is_valid_key(key: str) -> bool:
    return KEY_RE.match(key) is not None


@dataclass(frozen=True)
class StoredObject:
    """What a response needs to know of a stored file before it sends it."""

    size: int
    etag: str


class Storage(Protocol):
    async def put(self, source: Path, extension: str) -> str:
        """Move `source` into storage under a new key and return the key."""
        ...

    def local_path(self, key: str) -> Path | None:
        """Where a stored key's bytes are on this machine's disk: None for an invalid or missing key, and
        always None for storage that is not a local folder (a bucket)."""
        ...

    async def info(self, key: str) -> StoredObject | None:
        """Size and ETag of a stored file, or None for an invalid or missing key."""
        ...

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes `start` to `end` (exclusive) of a stored file, in chunks."""
        ...

    async def fetch(self, key: str, target: Path) -> Path | None:
        """A file on this machine with the key's bytes: its own path on a local disk (`target` untouched),
        else downloaded to `target`. None for an invalid or missing key."""
        ...

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:
        """A URL any client may GET the file from until `expires` passes; None where the storage has none
        (a local folder) or the key is invalid."""
        ...

    async def written_before(self, cutoff: float) -> list[str]:
        """Names (`{day}/{file}`, keys and leftovers alike) of files last written before `cutoff`, a POSIX
        time: what the orphan sweep looks at."""
        ...

    async def remove_leftover(self, name: str) -> None:
        """Remove a half-written leftover (`name` as `written_before` gives it, ending in `.part`)."""
        ...

    async def reachable(self) -> bool:
        """Whether the storage answers (for `/readyz`)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a stored file. Idempotent: a key already gone (or never valid) is not an error."""
        ...
