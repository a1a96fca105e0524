"""One reader of the task rows watched in this process, for all of their streams at once.

Streams never read the database themselves: a stream starts from the snapshot its request just wrote
or read (`TaskService.follow`) and hears of every change made in this process from the event bus, as it
is written. Every `poll_seconds` this reader reads all watched tasks that have not ended, in a few
queries, so that a change made by another process (a `reelgate worker` on the same SQLite file,
PostgreSQL without its notifications) is seen; a snapshot is published only when it changed.

When a read fails (the database went away), each stream of those tasks is told, and ends with its
last words; the tasks themselves go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.errors import NotFound
from reelgate.events.local import LocalEventBus
from reelgate.store.coalesce import Coalesced
from reelgate.store.tables import tasks
from reelgate.tasks.models import Task

log = logging.getLogger(__name__)

#: Ids per query: well under SQLite's bound-parameter limit.
BATCH = 500

#: The columns a task is made of: its worker, heartbeat (written every few seconds while it runs) and request
#: hash are no change to its watchers. Built once: it runs for every watched task each poll.
_SELECT = select(*(c for c in tasks.c if c.name not in ("worker_id", "heartbeat_at", "request_hash")))


class RowReader:
    def __init__(self, engine: AsyncEngine, bus: LocalEventBus, poll_seconds: float) -> None:
        self._engine = engine
        self._bus = bus
        self.poll_seconds = poll_seconds
        #: Each watched task's row as last read, and the task made of it: an unchanged row (nearly every
        #: row at nearly every poll) is compared, not made into a task again.
        self._seen: dict[str, tuple[tuple[Any, ...], Task]] = {}
        self._lookups: Coalesced[str, Task] = Coalesced(self._read_tasks)

    async def read(self, task_id: str) -> Task | None:
        """The task as stored, read in one query with the others asked for meanwhile (PostgreSQL's
        notifications of many tasks at once)."""
        return await self._lookups.get(task_id)

    async def run(self) -> None:
        """Read every watched task each `poll_seconds`, until cancelled."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh(self._bus.watched())
            except Exception:  # a bug here must not stop every stream of the process from following
                log.exception("task rows could not be refreshed; trying again at the next poll")

    async def refresh(self, task_ids: Collection[str]) -> None:
        """Read the tasks and publish what changed; their watchers hear of a failed read."""
        ordered = sorted(task_ids)
        for gone in self._seen.keys() - ordered:  # what is kept is bounded by what is watched
            del self._seen[gone]
        for start in range(0, len(ordered), BATCH):
            chunk = ordered[start : start + BATCH]
            try:
                found = await self._read(chunk)
            except Exception as exc:  # whatever the database says, the streams must hear of it
                log.warning("task rows could not be read (%r); their streams end", exc)
                self._bus.fail(chunk, exc)
                continue
            for task_id, row in found.items():
                self._bus.refreshed(self._task(task_id, row))
            missing = [task_id for task_id in chunk if task_id not in found]
            self._bus.fail(missing, NotFound("The task no longer exists.", param="id"))

    def _task(self, task_id: str, row: Row[Any]) -> Task:
        """The task of `row`, made again only if the row changed since it was last read. Even an unchanged
        row's task goes through `refreshed`: the snapshot last published may be one the row never held (a
        stream's stale starting point, a write published before its transaction rolled back)."""
        values = tuple(row)
        seen = self._seen.get(task_id)
        if seen is None or seen[0] != values:
            seen = self._seen[task_id] = (values, Task.from_row(row))
        return seen[1]

    async def _read_tasks(self, task_ids: list[str]) -> dict[str, Task]:
        return {task_id: Task.from_row(row) for task_id, row in (await self._read(task_ids)).items()}

    async def _read(self, task_ids: list[str]) -> dict[str, Row[Any]]:
        async with self._engine.connect() as conn:
            return {row.id: row for row in await conn.execute(_SELECT.where(tasks.c.id.in_(task_ids)))}
