"""Removes what a killed process left behind: stored files no task keeps, and scratch folders of dead attempts.

A process killed mid-render (kill -9, a lost machine) may have stored a video whose task never recorded
it, half-copied `.part` files, and its scratch folder `{work_dir}/{task_id}`. The recovery sweep renders
the task again elsewhere; this sweep deletes the leftovers:

- a stored file no task references (nor a character, as one of its key frames), last written more than
  `MIN_AGE` ago (a task records its files seconds after storing them, so an hour leaves a wide margin),
  and any `.part` file as old;
- a scratch folder whose task is not `in_progress`, or whose heartbeat is older than the lease, and
  that nothing wrote to for a lease (a worker that just claimed the task has written to it since).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.characters import repository as characters_repo
from reelgate.ids import is_task_id
from reelgate.settings import Settings
from reelgate.storage.base import Storage
from reelgate.tasks import repository as repo

log = logging.getLogger(__name__)

#: How old an unreferenced stored file must be before it is taken for a leftover.
MIN_AGE = timedelta(hours=1)

#: The prefix of a scratch folder being removed (moved aside first: `_remove_unless_remade`).
ASIDE = ".removing-"

#: Keys looked up per query.
BATCH = 200


async def remove_orphan_files(engine: AsyncEngine, storage: Storage, now: float | None = None) -> list[str]:
    """Delete stored files older than `MIN_AGE` that no task references; the names removed."""
    cutoff = (now if now is not None else time.time()) - MIN_AGE.total_seconds()
    names = await storage.written_before(cutoff)
    removed = [name for name in names if name.endswith(".part")]
    for name in removed:
        await storage.remove_leftover(name)
    keys = [name for name in names if not name.endswith(".part")]
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        async with engine.connect() as conn:
            kept = await repo.referenced_files(conn, batch) | await characters_repo.referenced_frames(conn, batch)
        for key in batch:
            if key not in kept:
                await storage.delete(key)
                removed.append(key)
    return removed


async def remove_dead_scratch(
    engine: AsyncEngine, work_dir: Path, lease_seconds: float, now: float | None = None
) -> list[str]:
    """Delete scratch folders of attempts no longer running; the task IDs whose folder went."""
    now = now if now is not None else time.time()
    await asyncio.to_thread(_remove_set_aside, work_dir)
    seen = {folder: folder.stat() for folder in _folders(work_dir)}
    folders = [folder for folder, stat in seen.items() if now - stat.st_mtime > lease_seconds]
    stale_before = datetime.fromtimestamp(now, UTC) - timedelta(seconds=lease_seconds)
    async with engine.connect() as conn:
        live = await repo.live_ids(conn, [folder.name for folder in folders], stale_before)
    dead = [folder for folder in folders if folder.name not in live]
    removed = [folder.name for folder in dead if await asyncio.to_thread(_remove_unless_remade, folder, seen[folder])]
    return removed


def _remove_set_aside(work_dir: Path) -> None:
    """Remove what a sweep killed while removing left behind (moved aside, never listed as a task's)."""
    if work_dir.is_dir():
        for leftover in work_dir.glob(f"{ASIDE}*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _remove_unless_remade(folder: Path, seen: os.stat_result) -> bool:
    """Remove `folder` if it is still the one seen; leave it if a new attempt made it again meanwhile.

    The task of a dead attempt is claimed again at once (`workers/recovery.py`), and the new attempt empties
    and remakes the same folder: between the sweep's look and its removal, the folder may have become the
    new attempt's. A folder made again has a new modification time; one still the same is moved aside in one
    step (`rename`, to a name no sweep lists) and only then removed.
    """
    try:
        now = folder.stat()
    except FileNotFoundError:
        return False
    if (now.st_ino, now.st_mtime_ns) != (seen.st_ino, seen.st_mtime_ns):
        return False
    aside = folder.with_name(f"{ASIDE}{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True


def _folders(work_dir: Path) -> list[Path]:
    if not work_dir.is_dir():
        return []
    return [path for path in work_dir.iterdir() if path.is_dir() and is_task_id(path.name)]


async def sweep_forever(engine: AsyncEngine, storage: Storage, work_dir: Path, settings: Settings) -> None:
    """Both removals at start and every `orphan_sweep_seconds`; a failed sweep is logged and tried again."""
    while True:
        try:
            files = await remove_orphan_files(engine, storage)
            folders = await remove_dead_scratch(engine, work_dir, settings.lease_seconds)
            if files or folders:
                log.info("removed %d orphaned files and %d dead scratch folders", len(files), len(folders))
        except Exception:
            log.exception("orphan sweep failed; trying again")
        await asyncio.sleep(settings.orphan_sweep_seconds)
