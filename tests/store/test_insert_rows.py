"""`insert_rows`: what the driver writes by itself is what SQLAlchemy's own INSERT writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.store.db import insert_rows
from reelgate.store.tables import tasks
from reelgate.tasks.models import Task
from reelgate.tasks.repository import task_row
from tests.store.test_store import _task

AT = datetime(2026, 11, 26, 20, 7, 34, 764563, tzinfo=UTC)


async def _stored(engine: AsyncEngine) -> list[tuple[object, ...]]:
    """The rows as the database holds them: read by the driver alone (SQLite gives back the stored text)."""
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.exec_driver_sql("SELECT * FROM tasks ORDER BY id")]


async def test_the_rows_stored_are_those_sqlalchemy_stores(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=1)
    plain = replace(_task(key.id), created_at=AT)
    odd = replace(
        _task(key.id),
        created_at=AT.astimezone(timezone(timedelta(hours=8))),  # stored as UTC either way
        expires_at=AT + timedelta(days=1),
        prompt="引号 'single' \"double\" back\\slash \n newline",
        seed=2**40,
        characters='["char_1"]',
    )
    rows = [task_row(plain, "hash-1"), task_row(odd, None)]

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: sync.execute(insert(tasks), rows))
    by_sqlalchemy = await _stored(engine)
    async with engine.begin() as conn:
        await conn.execute(delete(tasks))
        await conn.run_sync(lambda sync: insert_rows(sync, tasks, rows))
    by_driver = await _stored(engine)

    assert by_driver == by_sqlalchemy
    async with engine.connect() as conn:
        read = [Task.from_row(row) for row in await conn.execute(select(tasks).order_by(tasks.c.id))]
    assert read == sorted([plain, odd], key=lambda task: task.id)
