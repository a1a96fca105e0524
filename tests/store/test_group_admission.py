"""A group of admissions in one transaction stores what one transaction per request would, on SQLite and
PostgreSQL (where the group's writes are one statement of arrays, and its notices go out at commit)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.billing.audit import verify_ledger
from reelgate.errors import InsufficientQuota
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
