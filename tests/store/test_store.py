"""The store on SQLite and PostgreSQL: migrations, keys, the ledger and task transitions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.base import Orientation
from reelgate.billing import keys, ledger
from reelgate.errors import AuthenticationError, InsufficientQuota
from reelgate.ids import new_task_id
from reelgate.store.db import migrate
from reelgate.store.tables import api_keys
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskError, TaskStatus


def _task(key_id: str) -> Task:
    return Task(
        id=new_task_id(),
        key_id=key_id,
        model="sora-2-hd-15s-chat",
        backend="procedural",
        status=TaskStatus.QUEUED,
        progress=0,
        prompt="中国街头吃西瓜",
        orientation=Orientation.PORTRAIT,
        seconds=15,
        size="1024x1792",
        fps=24,
        seed=7,
        price=1_000_000,
        created_at=datetime.now(UTC),
    )


async def completed_task(engine: AsyncEngine, video_file: str, thumbnail_file: str) -> Task:
    """A task stored as completed, keeping these files (the files a sweep must leave alone)."""
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=0)
        task = _task(key.id)
        await repo.insert_task(conn, task)
        await repo.claim(conn, task.id, "worker", datetime.now(UTC))
        done = await conn.run_sync(
            repo.complete_sync,
            task.id,
            share_id="s_" + "0" * 32,
            video_file=video_file,
            thumbnail_file=thumbnail_file,
            now=datetime.now(UTC),
        )
    assert done is not None
    return done


async def test_migrations_are_idempotent(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"api_keys", "tasks", "ledger", "alembic_version"} <= names


async def test_keys_store_only_a_digest(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, secret = await keys.create_key(conn, name="alice", balance=3_000_000)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(api_keys))).one()
        assert secret not in str(tuple(stored))
        assert stored.digest == keys.digest(secret)
        assert (await keys.authenticate(conn, secret)).id == key.id
        for wrong in (None, "", secret + "x", "sk-nothing"):
            with pytest.raises(AuthenticationError):
                await keys.authenticate(conn, wrong)
    assert key.balance == 3_000_000


async def test_debit_is_all_or_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=1_500_000)
    task = _task(key.id)
    async with engine.begin() as conn:
        assert await ledger.debit(conn, key.id, 1_000_000, task.id) == 500_000
        await repo.insert_task(conn, task)
    with pytest.raises(InsufficientQuota):
        async with engine.begin() as conn:
            await ledger.debit(conn, key.id, 1_000_000, new_task_id())
    async with engine.connect() as conn:
        assert (await keys.get_key(conn, key.id)).balance == 500_000
        assert await ledger.ledger_sum(conn, key.id) == 500_000
        kinds = [entry.kind for entry in await ledger.entries(conn, key.id)]
    assert kinds == [ledger.EntryKind.CREDIT, ledger.EntryKind.CHARGE]


async def test_a_task_is_never_charged_twice(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=5_000_000)
    task_id = new_task_id()
    async with engine.begin() as conn:
        await ledger.debit(conn, key.id, 1_000_000, task_id)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await ledger.debit(conn, key.id, 1_000_000, task_id)
    async with engine.connect() as conn:
        assert (await keys.get_key(conn, key.id)).balance == 4_000_000


async def test_concurrent_debits_never_overdraw(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=5_000_000)

    async def attempt() -> bool:
        try:
            async with engine.begin() as conn:
                await ledger.debit(conn, key.id, 1_000_000, new_task_id())
        except InsufficientQuota:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    assert results.count(True) == 5
    async with engine.connect() as conn:
        assert (await keys.get_key(conn, key.id)).balance == 0
        assert await ledger.ledger_sum(conn, key.id) == 0


async def test_transitions(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn)
        task = _task(key.id)
        await repo.insert_task(conn, task)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        claimed = await repo.claim(conn, task.id, "w1", now)
        assert claimed is not None and claimed.status is TaskStatus.IN_PROGRESS and claimed.attempts == 1
        assert await repo.claim(conn, task.id, "w2", now) is None  # only one claim wins
        assert (await repo.set_progress(conn, task.id, 40, now)).progress == 40  # type: ignore[union-attr]
        assert await repo.set_progress(conn, task.id, 30, now) is None  # progress never goes back
        done = await conn.run_sync(
            repo.complete_sync, task.id, share_id="s_" + "a" * 32, video_file="v.mp4", thumbnail_file="t.webp", now=now
        )
        assert done is not None and done.status is TaskStatus.COMPLETED and done.progress == 100
        assert await repo.fail(conn, task.id, TaskError("x", "y"), now) is None  # final stays final
    async with engine.connect() as conn:
        stored = await repo.get_task(conn, task.id)
    assert stored is not None and stored.status is TaskStatus.COMPLETED
    assert stored.created_at.tzinfo is not None and stored.completed_at is not None


async def test_stale_requeue_respects_a_fresh_heartbeat(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn)
        task = _task(key.id)
        await repo.insert_task(conn, task)
        await repo.claim(conn, task.id, "w1", datetime.now(UTC))
    async with engine.begin() as conn:
        long_ago = datetime.now(UTC) - timedelta(minutes=5)
        assert await repo.stale_tasks(conn, long_ago) == []
        assert await repo.requeue(conn, task.id, stale_before=long_ago) is None
        soon = datetime.now(UTC) + timedelta(seconds=1)
        assert [t.id for t in await repo.stale_tasks(conn, soon)] == [task.id]
        requeued = await repo.requeue(conn, task.id, stale_before=soon)
        assert requeued is not None and requeued.status is TaskStatus.QUEUED
        assert await repo.queued_ids(conn) == [task.id]
