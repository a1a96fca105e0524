"""The local folder behind the storage port's bucket-shaped methods: sizes, ranges and fetches in place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reelgate.storage.local import LocalStorage

VIDEO = bytes(range(256)) * 2000  # 500 KiB: more than one read chunk


async def test_info_read_and_fetch_work_on_the_folder_itself(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    source = tmp_path / "video.mp4"
    source.write_bytes(VIDEO)
    key = await storage.put(source, "mp4")

    found = await storage.info(key)
    assert found is not None and found.size == len(VIDEO) and found.etag.startswith('"')
    assert b"".join([chunk async for chunk in storage.read(key, 10, len(VIDEO) - 10)]) == VIDEO[10:-10]
    assert await storage.fetch(key, tmp_path / "copy.mp4") == storage.root / key  # no copy made
    assert not (tmp_path / "copy.mp4").exists()
    assert await storage.presigned_url(key, timedelta(minutes=5)) is None  # served by /cdn/ itself
    assert await storage.reachable()

    await storage.delete(key)
    assert await storage.info(key) is None and await storage.fetch(key, tmp_path / "x.mp4") is None
    assert await storage.info("../../etc/passwd") is None
