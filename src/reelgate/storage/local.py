"""Local-directory storage: `{root}/{YYYYMMDD}/{32 hex}.{ext}`, served by `api/files.py` at `/cdn/`."""

from __future__ import annotations

import asyncio
import errno
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reelgate.errors import StorageError, StorageFull
from reelgate.ids import new_file_name
from reelgate.storage.base import StoredObject, is_valid_key

#: Bytes read from disk at a time when a range is streamed.
CHUNK = 256 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def put(self, source: Path, extension: str) -> str:
        key = f"{datetime.now(UTC):%Y%m%d}/{new_file_name(extension)}"
        await asyncio.to_thread(self._move, source, self.root / key)
        return key

    def local_path(self, key: str) -> Path | None:
        if not is_valid_key(key):
            return None
        path = self.root / key
        return path if path.is_file() else None

    async def info(self, key: str) -> StoredObject | None:
        path = self.local_path(key)
        if path is None:
            return None
        stat = path.stat()
        return StoredObject(size=stat.st_size, etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.local_path(key)
        if path is None:
            return
        with path.open("rb") as file:
            file.seek(start)
            while start < end:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, end - start))
                if not chunk:
                    return
                start += len(chunk)
                yield chunk

    async def fetch(self, key: str, target: Path) -> Path | None:
        return self.local_path(key)

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:
        return None

    async def reachable(self) -> bool:
        return True

    async def delete(self, key: str) -> None:
        if is_valid_key(key):
            await asyncio.to_thread((self.root / key).unlink, missing_ok=True)

    async def written_before(self, cutoff: float) -> list[str]:
        return await asyncio.to_thread(self._written_before, cutoff)

    def _written_before(self, cutoff: float) -> list[str]:
        found = []
        for path in self.root.glob("*/*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    found.append(path.relative_to(self.root).as_posix())
            except FileNotFoundError:
                continue  # deleted while we looked
        return found

    async def remove_leftover(self, name: str) -> None:
        """Remove a `.part` file a killed copy left behind (`name` as `written_before` gives it)."""
        if name.endswith(".part") and is_valid_key(name.removesuffix(".part")):
            await asyncio.to_thread((self.root / name).unlink, missing_ok=True)

    @staticmethod
    def _move(source: Path, target: Path) -> None:
        partial = target.with_suffix(target.suffix + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copy under a temporary name, then rename: a reader never sees half a file.
            shutil.copyfile(source, partial)
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
            raise storage_error(exc) from exc
        source.unlink(missing_ok=True)


#: The errors by which a file system says it has no room left.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_error(exc: OSError) -> StorageError:
    """An OSError from writing a file, as the task failure it causes."""
    if exc.errno in NO_SPACE:
        return StorageFull("The video could not be stored: the server's disk is full.")
    return StorageError(f"The video could not be stored: {exc.strerror or exc}.")
