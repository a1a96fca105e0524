"""The one reader of the watched task rows (`tasks/watchers.py`): each poll publishes what another process
changed, once; a heartbeat is no change; a task is made only of a row that changed; a missing row or a
failed read ends its streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.errors import NotFound
from reelgate.events.local import LocalEventBus
from reelgate.store.db import create_engine
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskStatus
from reelgate.tasks.watchers import RowReader
from tests.store.test_store import _task


@pytest.fixture
async def elsewhere(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """Another process's pool on the same database: its writes reach this one only through the row."""
    other = create_engine(database_url)
    yield other
    await other.dispose()


async def _stored(engine: AsyncEngine) -> Task:
    """A queued task, as its row reads back."""
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=5_000_000)
        made = _task(key.id)
        await repo.insert_task(conn, made)
    async with engine.connect() as conn:
        task = await repo.get_task(conn, made.id)
    assert task is not None
    return task


def _count_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the tasks made of rows from now on."""
    made: list[str] = []
    from_row = Task.from_row

    def counted(row: Any) -> Task:
        made.append(row.id)
        return from_row(row)

    monkeypatch.setattr(Task, "from_row", counted)
    return made


async def test_a_change_made_elsewhere_is_published_once(engine: AsyncEngine, elsewhere: AsyncEngine) -> None:
    bus = LocalEventBus()
    reader = RowReader(engine, bus, poll_seconds=60)
    task = await _stored(engine)
    async with bus.subscribe(task.id, task) as subscription:
        assert await subscription.next(0) == task
        await reader.refresh(bus.watched())
        assert await subscription.next(0) is None  # the row is what the stream started from
        async with elsewhere.begin() as conn:
            claimed = await repo.claim(conn, task.id, "w", datetime.now(UTC))
        await reader.refresh(bus.watched())
        assert claimed is not None and await subscription.next(0) == claimed
        await reader.refresh(bus.watched())
        assert await subscription.next(0) is None  # published once
        assert await reader.read(task.id) == claimed
    await reader.refresh(bus.watched())
    assert not reader._seen  # nothing is kept of a task no longer watched


async def test_a_heartbeat_is_no_change_and_makes_no_task(
    engine: AsyncEngine, elsewhere: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = LocalEventBus()
    reader = RowReader(engine, bus, poll_seconds=60)
    task = await _stored(engine)
    async with elsewhere.begin() as conn:
        claimed = await repo.claim(conn, task.id, "w", datetime.now(UTC))
    async with bus.subscribe(task.id) as subscription:
        await reader.refresh(bus.watched())
        assert await subscription.next(0) == claimed
        made = _count_made(monkeypatch)
        async with elsewhere.begin() as conn:
            assert await repo.heartbeat(conn, task.id, datetime.now(UTC))
        await reader.refresh(bus.watched())
        assert await subscription.next(0) is None
        assert made == []  # the row was compared, not made into a task again
        async with elsewhere.begin() as conn:
            progressed = await repo.set_progress(conn, task.id, 40, datetime.now(UTC))
        made.clear()  # the write made its own
        await reader.refresh(bus.watched())
        assert progressed is not None and await subscription.next(0) == progressed
        assert made == [task.id]


async def test_a_snapshot_the_row_does_not_hold_is_corrected_though_the_row_did_not_change(
    engine: AsyncEngine,
) -> None:
    bus = LocalEventBus()
    reader = RowReader(engine, bus, poll_seconds=60)
    task = await _stored(engine)
    async with bus.subscribe(task.id, task) as subscription:
        await reader.refresh(bus.watched())
        assert await subscription.next(0) == task
        bus.publish(replace(task, status=TaskStatus.IN_PROGRESS))  # published, then its transaction rolled back
        assert await subscription.next(0) != task
        await reader.refresh(bus.watched())
        assert await subscription.next(0) == task


async def test_a_missing_row_ends_its_streams(engine: AsyncEngine) -> None:
    bus = LocalEventBus()
    reader = RowReader(engine, bus, poll_seconds=60)
    task = await _stored(engine)
    async with bus.subscribe("task_gone") as gone, bus.subscribe(task.id, task) as kept:
        await reader.refresh(bus.watched())
        with pytest.raises(NotFound):
            await gone.next(0)
        assert await kept.next(0) == task
        assert await kept.next(0) is None
    assert await reader.read("task_gone") is None


async def test_a_failed_read_ends_the_streams_of_its_tasks(tmp_path: Path) -> None:
    unmigrated = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tasks table: every read fails
    bus = LocalEventBus()
    reader = RowReader(unmigrated, bus, poll_seconds=60)
    try:
        async with bus.subscribe("task_a") as a, bus.subscribe("task_b") as b:
            await reader.refresh(bus.watched())
            for subscription in (a, b):
                with pytest.raises(OperationalError):
                    await subscription.next(0)
    finally:
        await unmigrated.dispose()
