"""A group of admissions in one transaction stores what one transaction per request would, on SQLite and
PostgreSQL (where the group's writes are one statement of arrays, and its notices go out at commit)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.billing.audit import verify_ledger
from reelgate.errors import InsufficientQuota
from reelgate.store.db import create_engine, migrate
from reelgate.store.tables import api_keys, ledger, tasks
from reelgate.tasks.admission import GroupCommit
from reelgate.tasks.models import Task
from tests.store.test_store import _task


async def test_a_group_is_charged_joined_and_stored_as_one_by_one(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=2_000_000)  # two tasks' worth
        other, _ = await keys.create_key(conn, balance=1_000_000)
    later = datetime.now(UTC) + timedelta(days=7)
    first = replace(_task(key.id), prompt="中国街头吃西瓜 'quoted', \"double\", back\\slash", expires_at=later)
    second = replace(_task(key.id), seed=2**40, characters='["char_1"]', remixed_from="task_parent")
    third = _task(other.id)
    resend = _task(key.id)  # the same request as `first` again: it joins `first`, unpaid
    unfunded = _task(key.id)  # the key's balance went to `first` and `second`
    admissions = GroupCommit(engine, resend_protection=True)
    outcomes = await asyncio.gather(
        admissions.admit(first, "hash-first", join_running=True),
        admissions.admit(second, "hash-second", join_running=True),
        admissions.admit(resend, "hash-first", join_running=True),
        admissions.admit(third, "hash-third", join_running=True),
        admissions.admit(unfunded, "hash-unfunded", join_running=True),
        return_exceptions=True,
    )
    assert outcomes[:4] == [(first, True), (second, True), (first, False), (third, True)]
    assert isinstance(outcomes[4], InsufficientQuota)

    async with engine.connect() as conn:
        rows = (await conn.execute(select(tasks).order_by(tasks.c.created_at, tasks.c.id))).all()
        stored = {row.id: (Task.from_row(row), row.request_hash) for row in rows}
        balances = dict((await conn.execute(select(api_keys.c.id, api_keys.c.balance))).all())
        entries = (await conn.execute(select(ledger.c.task_id, ledger.c.amount, ledger.c.balance_after))).all()
        assert await verify_ledger(conn) == []
    assert stored == {
        first.id: (first, "hash-first"),
        second.id: (second, "hash-second"),
        third.id: (third, "hash-third"),
    }
    assert balances == {key.id: 0, other.id: 0}
    charges = {task_id: (amount, after) for task_id, amount, after in entries if amount < 0}
    assert charges == {first.id: (-1_000_000, 1_000_000), second.id: (-1_000_000, 0), third.id: (-1_000_000, 0)}

    # A resend after the group committed joins the stored task.
    again = await GroupCommit(engine, resend_protection=True).admit(_task(key.id), "hash-second", join_running=True)
    assert again == (second, False)


@pytest.mark.postgres
async def test_a_group_on_postgresql_is_three_statements(postgres_url: str) -> None:
    """Each statement is a round trip that waits for a turn of a busy event loop: a group of any size locks its
    keys, reads the running tasks with its hashes, and writes everything else in one statement, and the three
    statements' texts do not depend on the group's size."""
    engine = create_engine(postgres_url)
    await migrate(engine)
    try:
        await _count_statements_of_groups(engine)
    finally:
        await engine.dispose()


async def _count_statements_of_groups(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        funded = [(await keys.create_key(conn, balance=100_000_000))[0] for _ in range(3)]
    admissions = GroupCommit(engine, resend_protection=True)
    texts: set[str] = set()
    for size in (1, 7, 40):
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)  # noqa: B023 - read before the next size's listener replaces it

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            group = [_task(funded[n % 3].id) for n in range(size)]
            admitted = await asyncio.gather(
                *(admissions.admit(task, f"hash-{size}-{n}", join_running=True) for n, task in enumerate(group))
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert admitted == [(task, True) for task in group]
        assert len(statements) == 3, statements
        texts.update(statements)
    assert len(texts) == 3  # the same three texts for every size: each connection prepares them once
