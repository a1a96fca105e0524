"""The refund policy: a failed task is refunded exactly once, whoever fails it and however often."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys, ledger
from reelgate.billing.audit import verify_ledger
from reelgate.catalog import RefundOn
from reelgate.events.local import LocalEventBus
from reelgate.store.tables import api_keys
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskError, TaskStatus
from reelgate.tasks.settle import fail_task
from reelgate.workers.recovery import recover
from tests.store.test_store import _task
from tests.test_recovery import _orphan


async def _funded_task(engine: AsyncEngine) -> tuple[str, str]:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=3_000_000)
        task = _task(key.id)
        await ledger.debit(conn, key.id, task.price, task.id)
        await repo.insert_task(conn, task)
    return key.id, task.id


async def test_racing_failures_refund_once(engine: AsyncEngine) -> None:
    key_id, task_id = await _funded_task(engine)

    async def fail() -> None:
        async with engine.begin() as conn:
            await fail_task(conn, task_id, TaskError("boom", "boom"), datetime.now(UTC), refund=True)

    await asyncio.gather(*(fail() for _ in range(5)), return_exceptions=True)
    await fail()
    async with engine.connect() as conn:
        kinds = [e.kind for e in await ledger.entries(conn, key_id) if e.task_id == task_id]
        assert kinds == [ledger.EntryKind.CHARGE, ledger.EntryKind.REFUND]
        assert (await keys.get_key(conn, key_id)).balance == 3_000_000
        assert await verify_ledger(conn) == []


async def test_charge_on_failure_keeps_the_charge(engine: AsyncEngine) -> None:
    key_id, task_id = await _funded_task(engine)
    async with engine.begin() as conn:
        failed = await fail_task(conn, task_id, TaskError("boom", "boom"), datetime.now(UTC), refund=False)
    assert failed is not None and failed.status is TaskStatus.FAILED
    async with engine.connect() as conn:
        assert (await keys.get_key(conn, key_id)).balance == 2_000_000
        assert await verify_ledger(conn) == []


async def test_recovery_failure_refunds_once(engine: AsyncEngine) -> None:
    task_id = await _orphan(engine, attempts=2)
    for _ in range(3):  # the sweeper runs again and again, in several processes
        await recover(engine, LocalEventBus(), lease_seconds=30, max_attempts=2, refund=True)
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.FAILED
        assert await ledger.ledger_sum(conn, task.key_id) == 1_000_000
        assert await verify_ledger(conn) == []


async def test_verify_finds_tampering(engine: AsyncEngine) -> None:
    key_id, _ = await _funded_task(engine)
    async with engine.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(balance=api_keys.c.balance + 1))
    async with engine.connect() as conn:
        problems = await verify_ledger(conn)
    assert len(problems) == 1 and key_id in problems[0]


async def test_a_failure_the_server_caused_is_refunded_even_under_charge_on_failure(engine: AsyncEngine) -> None:
    charged_key, refused = await _funded_task(engine)
    refunded_key, disk_full = await _funded_task(engine)
    async with engine.begin() as conn:
        await fail_task(conn, refused, TaskError("generation_failed", "refused"), datetime.now(UTC), refund=False)
        await fail_task(conn, disk_full, TaskError("storage_full", "disk full"), datetime.now(UTC), refund=False)
    async with engine.connect() as conn:
        assert (await keys.get_key(conn, charged_key)).balance == 2_000_000
        assert (await keys.get_key(conn, refunded_key)).balance == 3_000_000
        assert await verify_ledger(conn) == []


async def test_a_models_refund_on_rule_decides_what_it_gives_back(engine: AsyncEngine) -> None:
    cases: list[tuple[RefundOn, str, int]] = [
        ("moderation", "content_policy_violation", 3_000_000),
        ("moderation", "upstream_failed", 2_000_000),
        ("never", "content_policy_violation", 2_000_000),
        ("never", "storage_full", 3_000_000),  # the server's own failure: always given back
        ("any_failure", "upstream_failed", 3_000_000),
    ]
    for rule, code, balance in cases:
        key_id, task_id = await _funded_task(engine)
        async with engine.begin() as conn:
            await fail_task(conn, task_id, TaskError(code, "refused"), datetime.now(UTC), refund=rule)
        async with engine.connect() as conn:
            assert (await keys.get_key(conn, key_id)).balance == balance, (rule, code)
