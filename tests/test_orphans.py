"""What a killed process leaves behind is swept: stored files no task keeps, scratch folders of dead attempts."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.storage.local import LocalStorage
from reelgate.tasks import repository as repo
from reelgate.workers.orphans import remove_dead_scratch, remove_orphan_files
from tests.store.test_store import _task, completed_task

TWO_HOURS_AGO = time.time() - 7200


async def _stored(storage: LocalStorage, tmp_path: Path, extension: str, *, old: bool) -> str:
    source = tmp_path / f"source.{extension}"
    source.write_bytes(b"bytes of a file")
    key = await storage.put(source, extension)
    if old:
        os.utime(storage.root / key, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    return key


async def test_unreferenced_old_files_go_and_kept_or_recent_ones_stay(engine: AsyncEngine, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    video = await _stored(storage, tmp_path, "mp4", old=True)
    thumbnail = await _stored(storage, tmp_path, "webp", old=True)
    orphan_video = await _stored(storage, tmp_path, "mp4", old=True)  # stored, then the process was killed
    orphan_thumbnail = await _stored(storage, tmp_path, "webp", old=True)
    recent = await _stored(storage, tmp_path, "mp4", old=False)  # its task may record it any moment
    partial = storage.root / f"{video.split('/')[0]}/{'a' * 32}.mp4.part"
    partial.write_bytes(b"half a copy")
    os.utime(partial, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    await completed_task(engine, video, thumbnail)

    removed = await remove_orphan_files(engine, storage)

    assert sorted(removed) == sorted([orphan_video, orphan_thumbnail, partial.relative_to(storage.root).as_posix()])
    assert storage.local_path(video) and storage.local_path(thumbnail) and storage.local_path(recent)
    assert storage.local_path(orphan_video) is None and not partial.exists()
    assert await remove_orphan_files(engine, storage) == []


async def test_scratch_folders_of_attempts_no_longer_running_go(engine: AsyncEngine, tmp_path: Path) -> None:
    work = tmp_path / "work"
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=0)
        running, killed, ended, just_claimed = (_task(key.id) for _ in range(4))
        for task in (running, killed, ended, just_claimed):
            await repo.insert_task(conn, task)
        await repo.claim(conn, running.id, "alive", now)
        await repo.claim(conn, killed.id, "killed", now - timedelta(minutes=5))  # its heartbeat stopped
        await repo.claim(conn, ended.id, "worker", now)
        await repo.fail(conn, ended.id, repo.TaskError("boom", "boom"), now)
    for task in (running, killed, ended, just_claimed):
        (work / task.id).mkdir(parents=True)
        (work / task.id / "frames.raw").write_bytes(b"scratch")
        if task is not just_claimed:  # a folder written to a moment ago belongs to a worker that just began
            os.utime(work / task.id, (TWO_HOURS_AGO, TWO_HOURS_AGO))

    removed = await remove_dead_scratch(engine, work, lease_seconds=30)

    assert sorted(removed) == sorted([killed.id, ended.id])
    assert sorted(p.name for p in work.iterdir()) == sorted([running.id, just_claimed.id])


async def test_a_dead_attempts_folder_made_again_by_the_next_attempt_stays(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The killed attempt's task is claimed again at once, and its new attempt empties and remakes the same
    folder: if that happens between the sweep's look and its removal, the new folder is left alone."""
    work = tmp_path / "work"
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=0)
        task = _task(key.id)
        await repo.insert_task(conn, task)
        await repo.claim(conn, task.id, "killed", datetime.now(UTC) - timedelta(minutes=5))
    folder = work / task.id
    folder.mkdir(parents=True)
    os.utime(folder, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    live_ids = repo.live_ids

    async def remade_meanwhile(*args: object) -> set[str]:
        found: set[str] = await live_ids(*args)  # type: ignore[arg-type]
        shutil.rmtree(folder)  # the next attempt's `_workdir`, as the sweep waits for its query
        folder.mkdir()
        (folder / "video.mp4").write_bytes(b"the new attempt's")
        return found

    monkeypatch.setattr(repo, "live_ids", remade_meanwhile)
    assert await remove_dead_scratch(engine, work, lease_seconds=30) == []
    assert (folder / "video.mp4").read_bytes() == b"the new attempt's"
    assert [p.name for p in work.iterdir()] == [task.id]
