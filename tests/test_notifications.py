"""PostgreSQL LISTEN/NOTIFY: a write in one process wakes the processes that run or watch the task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.events.local import LocalEventBus
from reelgate.events.postgres import APPLICATION_NAME, Listener, announce_as, asyncpg_dsn
from reelgate.observability.metrics import Metrics
from reelgate.store.db import create_engine, migrate
from reelgate.tasks import repository as repo
from reelgate.tasks.admission import GroupCommit
from reelgate.tasks.models import Task
from tests.store.test_store import _task

pytestmark = pytest.mark.postgres


@dataclass
class Listening:
    """A process's listener on the test database, what it was given, and what it did."""

    #: Another process's pool (its changes are read here), and this process's own (which reads them).
    writer: AsyncEngine
    reader: AsyncEngine
    bus: LocalEventBus
    queued: asyncio.Queue[str]
    reads: list[str]
    metrics: Metrics


@asynccontextmanager
async def listening(postgres_url: str) -> AsyncIterator[Listening]:
    """A connected listener of the process whose pool is `reader`, reading the tasks it is told of there."""
    writer, reader = create_engine(postgres_url), create_engine(postgres_url)
    await migrate(writer)
    here = Listening(writer, reader, LocalEventBus(), asyncio.Queue[str](), [], Metrics())

    async def read(task_id: str) -> Task | None:
        here.reads.append(task_id)
        async with reader.connect() as conn:
            return await repo.get_task(conn, task_id)

    listener = Listener(
        asyncpg_dsn(postgres_url),
        backends=["procedural"],
        on_queued=here.queued.put_nowait,
        watched=here.bus.watching,
        read=read,
        publish=here.bus.publish,
        metrics=here.metrics,
        own=announce_as(reader),
    )
    running = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        yield here
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await writer.dispose()
        await reader.dispose()


async def test_a_write_elsewhere_reaches_this_process_watchers_and_queue(postgres_url: str) -> None:
    async with listening(postgres_url) as here:
        writer, bus, queued, reads, metrics = here.writer, here.bus, here.queued, here.reads, here.metrics
        async with writer.begin() as conn:
            key, _ = await keys.create_key(conn, balance=5_000_000)
            task, unwatched = _task(key.id), _task(key.id)
            await repo.insert_task(conn, task)
            await repo.insert_task(conn, unwatched)
            await repo.insert_task(conn, replace(_task(key.id), backend="other"))
        # A new task of a backend run here wakes the queue; one of another backend does not.
        assert {await asyncio.wait_for(queued.get(), 10), await asyncio.wait_for(queued.get(), 10)} == {
            task.id,
            unwatched.id,
        }
        async with bus.subscribe(task.id) as watchers_a, bus.subscribe(task.id) as watchers_b:
            async with writer.begin() as conn:
                await repo.claim(conn, task.id, "w", datetime.now(UTC))
                await repo.claim(conn, unwatched.id, "w", datetime.now(UTC))
            for percent in (10, 20, 30):
                async with writer.begin() as conn:
                    await repo.set_progress(conn, task.id, percent, datetime.now(UTC))
            seen_a, seen_b = set(), set()
            while 30 not in seen_a or 30 not in seen_b:
                snapshot_a = await watchers_a.next(10)
                assert snapshot_a is not None, "no notification reached the watchers"
                seen_a.add(snapshot_a.progress)
                snapshot_b = await watchers_b.next(10)
                assert snapshot_b is not None
                seen_b.add(snapshot_b.progress)
        assert unwatched.id not in reads  # nobody here watches it: it is not read
        assert queued.empty()
        assert metrics.notification_lag.collect()[0].samples  # lag observed

        # The listening connection dies (a PostgreSQL restart, a proxy timeout): the listener comes back.
        async with writer.begin() as conn:
            ended = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"  # not another test's
                ),
                {"name": APPLICATION_NAME},
            )
        assert ended == 1
        deadline = asyncio.get_running_loop().time() + 20
        sent: set[str] = set()
        while True:  # a task queued once it is back wakes the queue again
            async with writer.begin() as conn:
                again = _task(key.id)
                await repo.insert_task(conn, again)
            sent.add(again.id)
            try:
                assert await asyncio.wait_for(queued.get(), 1) in sent
                break
            except TimeoutError:
                assert asyncio.get_running_loop().time() < deadline, "the listener did not reconnect"


async def test_a_process_does_not_read_back_its_own_changes(postgres_url: str) -> None:
    """Its own writes were published to its bus as they were made: only the other processes' are read."""
    async with listening(postgres_url) as here:
        ours, theirs, bus, queued, reads = here.reader, here.writer, here.bus, here.queued, here.reads
        async with ours.begin() as conn:
            key, _ = await keys.create_key(conn, balance=5_000_000)
        mine, other = _task(key.id), _task(key.id)
        async with bus.subscribe(mine.id), bus.subscribe(other.id) as watching_other:
            async with ours.begin() as conn:
                await repo.insert_task(conn, mine)
            async with theirs.begin() as conn:  # committed after ours: its notice arrives after ours
                await repo.insert_task(conn, other)
            assert (await asyncio.wait_for(watching_other.next(10), 10)) is not None
        assert reads == [other.id]
        # Both new tasks still wake the queue: a sweep or another worker of this process may claim either.
        assert {await asyncio.wait_for(queued.get(), 10) for _ in range(2)} == {mine.id, other.id}


async def test_a_group_of_admissions_is_announced(postgres_url: str) -> None:
    """A group's tasks (written in one statement) wake the queue and reach their watchers elsewhere."""
    async with listening(postgres_url) as here:
        async with here.writer.begin() as conn:
            key, _ = await keys.create_key(conn, balance=5_000_000)
        group = [_task(key.id) for _ in range(3)]
        admissions = GroupCommit(here.writer, resend_protection=True)
        async with here.bus.subscribe(group[1].id) as watching:
            admitted = await asyncio.gather(
                *(admissions.admit(task, f"hash-{n}", join_running=True) for n, task in enumerate(group))
            )
            assert admitted == [(task, True) for task in group]
            assert {await asyncio.wait_for(here.queued.get(), 10) for _ in group} == {task.id for task in group}
            seen = await watching.next(10)
        assert seen is not None and seen.id == group[1].id
        assert here.reads == [group[1].id]  # the watched one only
