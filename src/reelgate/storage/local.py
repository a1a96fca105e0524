"""Local-directory storage: `{root}/{YYYYMMDD}/{32 hex}.{ext}`, served by `api/files.py` at `/cdn/`."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

from reelgate.ids import new_file_name
from reelgate.storage.base import is_valid_key


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

    async def delete(self, key: str) -> None:
        if is_valid_key(key):
            await asyncio.to_thread((self.root / key).unlink, missing_ok=True)

    @staticmethod
    def _move(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        # Copy under a temporary name, then rename: a reader never sees half a file.
        shutil.copyfile(source, partial)
        partial.replace(target)
        source.unlink(missing_ok=True)
