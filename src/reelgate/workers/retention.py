"""Retention: the files of completed tasks past their `expires_at` are deleted; the tasks stay.

`expires_at` is set when a task is accepted (`created_at + REELGATE_RETENTION_DAYS`); with 0 days it
stays empty and nothing is ever deleted. Files go first, then the task is marked `files_expired` in its
own transaction: a crash in between leaves the task unmarked, and the next sweep deletes again (a
no-op) and marks it. After that `/source/{id}` still answers, and the file links answer 410 Gone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.observability.logging import log_context
from reelgate.storage.base import Storage
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task

log = logging.getLogger(__name__)

#: Tasks read per query; a sweep goes on until a batch comes back short.
BATCH = 100


async def expire_files(engine: AsyncEngine, storage: Storage, now: datetime | None = None) -> list[str]:
    """Delete the files of every task expired at `now` (default: now) and mark it; the IDs marked."""
    now = now or datetime.now(UTC)
    marked: list[str] = []
    while True:
        async with engine.connect() as conn:
            due = await repo.expired_tasks(conn, now, BATCH)
        done = [task.id for task in due if await _expire(engine, storage, task)]
        marked += done
        # A short batch is the last; a batch with no success would only come back the same.
        if len(due) < BATCH or not done:
            return marked


async def _expire(engine: AsyncEngine, storage: Storage, task: Task) -> bool:
    """Delete one task's files and mark it; False if another process marked it first or this failed."""
    with log_context(task_id=task.id, key_id=task.key_id):
        try:
            for key in task.stored_files:
                await storage.delete(key)
            async with engine.begin() as conn:
                changed = await repo.expire_files(conn, task.id)
        except Exception:
            log.exception("task %s: its expired files could not be deleted; trying again next sweep", task.id)
            return False
        if changed:
            log.info("task %s: files expired on %s and were deleted", task.id, task.expires_at)
    return changed is not None


async def sweep_forever(engine: AsyncEngine, storage: Storage, every_seconds: float) -> None:
    """`expire_files` now and every `every_seconds`; a failed sweep is logged and tried again."""
    while True:
        try:
            await expire_files(engine, storage)
        except Exception:
            log.exception("retention sweep failed; trying again")
        await asyncio.sleep(every_seconds)
