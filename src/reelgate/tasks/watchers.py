"""One reader of the task rows watched in this process, for all of their streams at once.

Streams never read the database themselves: a stream subscribes to the event bus and asks for its
task's first snapshot (`want`), and this reader reads every wanted row in one query — so 500 streams
opened together cost a handful of reads, not 500. Every `poll_seconds` it also reads all watched tasks
that have not ended, so that a change made by another process (a `reelgate worker` on the same SQLite
file, PostgreSQL without its notifications) is seen; a snapshot is published only when it changed.

When a read fails (the database went away), each stream of those tasks is told, and ends with its
last words; the tasks themselves go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.errors import NotFound
from reelgate.events.local import LocalEventBus
from reelgate.store.coalesce import Coalesced
from reelgate.store.tables import tasks
from reelgate.tasks.models import Task

log = logging.getLogger(__name__)

#: Ids per query: well under SQLite's bound-parameter limit.
BATCH = 500


class RowReader:
    def __init__(self, engine: AsyncEngine, bus: LocalEventBus, poll_seconds: float) -> None:
        self._engine = engine
        self._bus = bus
        self.poll_seconds = poll_seconds
        self._wanted: set[str] = set()
        self._wake = asyncio.Event()
        self._lookups: Coalesced[str, Task] = Coalesced(self._read)

    async def read(self, task_id: str) -> Task | None:
        """The task as stored, read in one query with the others asked for meanwhile (PostgreSQL's
        notifications of many tasks at once)."""
        return await self._lookups.get(task_id)

    def want(self, task_id: str) -> None:
        """Read the task soon (with whatever else is wanted meanwhile) and publish it to its watchers."""
        self._wanted.add(task_id)
        self._wake.set()

    async def run(self) -> None:
        """Read what is wanted as it comes, and every watched task each `poll_seconds`, until cancelled."""
        next_poll = time.monotonic() + self.poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_poll - time.monotonic())):
                    await self._wake.wait()
            ids = set(self._wanted)
            if time.monotonic() >= next_poll:
                ids.update(self._bus.watched())
                next_poll = time.monotonic() + self.poll_seconds
            self._wanted.clear()
            self._wake.clear()
            try:
                await self.refresh(ids)
            except Exception:  # a bug here must not stop every stream of the process from following
                log.exception("task rows could not be refreshed; trying again at the next poll")

    async def refresh(self, task_ids: Collection[str]) -> None:
        """Read the tasks and publish what changed; their watchers hear of a failed read."""
        ordered = sorted(task_ids)
        for start in range(0, len(ordered), BATCH):
            chunk = ordered[start : start + BATCH]
            try:
                found = await self._read(chunk)
            except Exception as exc:  # whatever the database says, the streams must hear of it
                log.warning("task rows could not be read (%r); their streams end", exc)
                self._bus.fail(chunk, exc)
                continue
            for task in found.values():
                self._bus.refreshed(task)
            missing = [task_id for task_id in chunk if task_id not in found]
            self._bus.fail(missing, NotFound("The task no longer exists.", param="id"))

    async def _read(self, task_ids: list[str]) -> dict[str, Task]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(tasks).where(tasks.c.id.in_(task_ids)))
            return {task.id: task for task in map(Task.from_row, rows)}
