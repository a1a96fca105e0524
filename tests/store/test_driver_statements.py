"""`plain_rows` and `plain_write`: a lone admission's statements, run by the SQLite driver itself, read and
write what SQLAlchemy's execution of the same statements does (on PostgreSQL SQLAlchemy runs them)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.billing.ledger import _SET_BALANCE
from reelgate.store.db import _driver_statement, plain_rows, plain_write, run_sync
from reelgate.store.tables import api_keys, tasks
from reelgate.tasks import repository as repo
from reelgate.tasks.admission import _LOCK_ONE_BY_WRITE, _RUNNING_WITH_HASH
from reelgate.tasks.models import Task
from tests.store.test_store import _task

EXPIRES = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def _key_with_a_running_task(engine: AsyncEngine) -> tuple[str, Task]:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=5, expires_at=EXPIRES)
        await conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(disabled=True))
    task = replace(_task(key.id), characters='["char_1"]', expires_at=EXPIRES)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: repo.insert_tasks(sync, [(task, "hash-1")]))
    return key.id, task


async def test_the_rows_read_are_those_sqlalchemy_reads(engine: AsyncEngine) -> None:
    key_id, task = await _key_with_a_running_task(engine)
    statements = [(_LOCK_ONE_BY_WRITE, {"key_id": key_id}), (_RUNNING_WITH_HASH, {"hash": "hash-1"})]

    def both(conn: Connection) -> list[tuple[list[Any], list[Any], list[str]]]:
        read = []
        for statement, params in statements:
            theirs = conn.execute(statement, params)
            names = list(theirs.keys())
            read.append((plain_rows(conn, statement, params), list(theirs), names))
        return read

    async with engine.begin() as conn:
        read = await conn.run_sync(both)
    (locked, locked_theirs, key_names), (running, running_theirs, task_names) = read
    assert [tuple(row) for row in locked] == [tuple(row) for row in locked_theirs]
    assert [tuple(row) for row in running] == [tuple(row) for row in running_theirs]
    assert list(locked[0]._fields) == key_names and list(running[0]._fields) == task_names
    row = locked[0]
    assert row.disabled is True and row.deleted is False and row.expires_at == EXPIRES
    assert keys.refusal(row, datetime.now(UTC)) is not None  # the disabled key is refused
    assert Task.from_values(running[0]._asdict()) == task


async def test_a_balance_written_is_the_one_read_back(engine: AsyncEngine) -> None:
    key_id, _ = await _key_with_a_running_task(engine)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: plain_write(sync, _SET_BALANCE, [{"key": key_id, "left": 3}]))
    async with engine.connect() as conn:
        assert (await conn.execute(select(api_keys.c.balance).where(api_keys.c.id == key_id))).scalar_one() == 3


async def test_a_locked_database_sends_the_lock_to_a_thread_that_waits(engine: AsyncEngine) -> None:
    """The driver's "database is locked" is raised as SQLAlchemy raises it, so `run_sync` tries again in a
    worker thread that waits for the lock, as it does for statements SQLAlchemy runs."""
    if engine.dialect.name != "sqlite":
        return
    key_id, _ = await _key_with_a_running_task(engine)
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's transaction holds the writer's lock
    threads: list[int] = []

    def lock(conn: Connection) -> int:
        threads.append(threading.get_ident())
        return int(plain_rows(conn, _LOCK_ONE_BY_WRITE, {"key_id": key_id})[0].balance)

    locking = asyncio.create_task(run_sync(engine, lock, write=True))
    await asyncio.sleep(0.3)
    assert not locking.done()
    other.execute("COMMIT")
    assert await asyncio.wait_for(locking, 10) == 5
    assert threads[0] == threading.get_ident() and threads[-1] != threading.get_ident()
    other.close()


async def test_a_worker_write_returns_the_task_sqlalchemy_reads_back(engine: AsyncEngine) -> None:
    """A claim's UPDATE ... RETURNING every column of the task, run by the driver on SQLite."""
    _, task = await _key_with_a_running_task(engine)
    now = datetime(2026, 11, 26, 22, 40, 1, 123456, tzinfo=UTC)
    async with engine.begin() as conn:
        claimed = await conn.run_sync(lambda sync: repo.claim_sync(sync, task.id, "worker-1", now))
    async with engine.connect() as conn:
        stored = Task.from_row((await conn.execute(select(tasks).where(tasks.c.id == task.id))).one())
    assert claimed == stored
    assert claimed is not None and claimed.status.value == "in_progress" and claimed.started_at == now
    assert claimed.characters == task.characters and claimed.expires_at == EXPIRES


def test_the_statements_of_a_lone_admission_and_of_every_render_are_the_drivers_on_sqlite() -> None:
    """A statement with an expanding parameter (`IN` a list) goes back to SQLAlchemy: none of these may have one."""
    statements = {
        "admission's key lock": _LOCK_ONE_BY_WRITE,
        "admission's running-task read": _RUNNING_WITH_HASH,
        "charge's balance": _SET_BALANCE,
        "claim": repo._CLAIM,
        "claim of some backends": repo._claim_of(("diffusers", "procedural")),
        "progress": repo._PROGRESS,
        "completion": repo._COMPLETE,
    }
    dialect = sqlite.dialect()
    assert [name for name, statement in statements.items() if _driver_statement(statement, dialect) is None] == []
