"""Checks the ledger's invariants; `reelgate ledger verify` prints what this finds."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.billing.ledger import EntryKind
from reelgate.store.tables import api_keys, ledger, tasks
from reelgate.tasks.models import TaskStatus


async def verify_ledger(conn: AsyncConnection) -> list[str]:
    """Every broken invariant as a sentence; empty when the books balance.

    - each key's balance equals the sum of its ledger entries;
    - each task has exactly one charge, of its price;
    - only failed tasks have refunds, each equal to the charge.
    """
    return [*await _balances(conn), *await _charges(conn), *await _refunds(conn)]


async def _balances(conn: AsyncConnection) -> list[str]:
    sums = select(ledger.c.key_id, func.sum(ledger.c.amount).label("total")).group_by(ledger.c.key_id).subquery()
    rows = await conn.execute(
        select(api_keys.c.id, api_keys.c.balance, func.coalesce(sums.c.total, 0).label("total")).outerjoin(
            sums, sums.c.key_id == api_keys.c.id
        )
    )
    return [f"key {r.id}: balance {r.balance} != ledger sum {r.total}" for r in rows if r.balance != r.total]


async def _charges(conn: AsyncConnection) -> list[str]:
    charge = ledger.alias("charge")
    rows = await conn.execute(
        select(tasks.c.id, tasks.c.price, func.count(charge.c.id).label("n"), func.sum(charge.c.amount).label("total"))
        .outerjoin(charge, (charge.c.task_id == tasks.c.id) & (charge.c.kind == EntryKind.CHARGE.value))
        .group_by(tasks.c.id, tasks.c.price)
    )
    return [
        f"task {r.id}: {r.n} charges totalling {r.total or 0}, price {r.price}"
        for r in rows
        if r.n != 1 or r.total != -r.price
    ]


async def _refunds(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        select(ledger.c.task_id, ledger.c.amount, tasks.c.status, tasks.c.price)
        .outerjoin(tasks, tasks.c.id == ledger.c.task_id)
        .where(ledger.c.kind == EntryKind.REFUND.value)
    )
    return [
        f"task {r.task_id}: refund of {r.amount} for a task that is {r.status}, price {r.price}"
        for r in rows
        if r.status != TaskStatus.FAILED.value or r.amount != r.price
    ]
