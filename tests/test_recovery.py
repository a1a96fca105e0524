"""Tasks of a dead worker are restarted, then failed after max_attempts; charges are never touched."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys, ledger
from reelgate.events.local import LocalEventBus
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskStatus
from reelgate.workers.recovery import recover
from tests.store.test_store import _task


async def _orphan(engine: AsyncEngine, attempts: int) -> str:
    """A charged task claimed `attempts` times by workers that then died a minute ago."""
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=1_000_000)
        task = replace(_task(key.id), attempts=attempts - 1)
        await ledger.debit(conn, key.id, task.price, task.id)
        await repo.insert_task(conn, task)
        await repo.claim(conn, task.id, "dead-worker", datetime.now(UTC) - timedelta(minutes=1))
    return task.id


async def test_a_dead_workers_task_is_requeued(engine: AsyncEngine) -> None:
    task_id = await _orphan(engine, attempts=1)
    queued = await recover(engine, LocalEventBus(), lease_seconds=30, max_attempts=2)
    assert queued == [task_id]
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.QUEUED
        assert [e.kind for e in await ledger.entries(conn, task.key_id)] == ["credit", "charge"]


async def test_after_max_attempts_it_fails_clearly(engine: AsyncEngine) -> None:
    task_id = await _orphan(engine, attempts=2)
    assert await recover(engine, LocalEventBus(), lease_seconds=30, max_attempts=2) == []
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.FAILED and task.error is not None
        assert task.error.code == "worker_lost" and "2 times" in task.error.message
        # A lost worker is the server's fault: charged once and refunded once, even under charge-on-failure.
        assert [e.kind for e in await ledger.entries(conn, task.key_id)] == ["credit", "charge", "refund"]
        assert await ledger.ledger_sum(conn, task.key_id) == 1_000_000


async def test_a_live_worker_is_left_alone(engine: AsyncEngine) -> None:
    task_id = await _orphan(engine, attempts=1)
    async with engine.begin() as conn:
        await repo.heartbeat(conn, task_id, datetime.now(UTC))
    assert await recover(engine, LocalEventBus(), lease_seconds=30, max_attempts=2) == []
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.IN_PROGRESS
