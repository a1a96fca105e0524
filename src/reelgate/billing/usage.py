"""Usage summaries: tasks by status, money charged and refunded, and chat clients' background requests
(answered free, never tasks), grouped by key, model and/or day.

Task counts come from the task table (by the task's creation time); money comes from the ledger's
charge and refund entries (by the entry's time), so a refund counts on the day the task failed.
Days are UTC calendar days, computed in SQL the same way on SQLite and PostgreSQL (`utc_date`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Date, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from reelgate.billing.ledger import EntryKind
from reelgate.store.tables import background_requests, ledger, tasks

MONEY_KINDS = (EntryKind.CHARGE.value, EntryKind.REFUND.value)


class GroupBy(StrEnum):
    KEY = "key"  #: one row per API key id
    MODEL = "model"  #: one row per model name
    DAY = "day"  #: one row per UTC day, `YYYY-MM-DD`


class utc_date(FunctionElement[date]):
    """The UTC calendar day of a timestamp column, portable across SQLite and PostgreSQL."""

    type = Date()
    inherit_cache = True


@compiles(utc_date)
def _utc_date_default(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores `UtcDateTime` values as UTC text, so its date() is already the UTC day.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # A timestamptz's date depends on the session's time zone; pin it to UTC.
    return f"date(timezone('UTC', {compiler.process(element.clauses, **kw)}))"


@dataclass(frozen=True)
class UsageFilter:
    since: datetime | None = None
    #: Exclusive upper bound.
    until: datetime | None = None
    key_id: str | None = None


@dataclass
class UsageRow:
    #: The group's values, in the order of `group_by` (days as `YYYY-MM-DD`).
    group: tuple[str, ...]
    tasks: dict[str, int] = field(default_factory=dict)
    charged: int = 0
    refunded: int = 0
    #: Background requests answered for free (titles, tags, ...).
    background: int = 0

    @property
    def net(self) -> int:
        return self.charged - self.refunded


async def usage(conn: AsyncConnection, group_by: Sequence[GroupBy], where: UsageFilter) -> list[UsageRow]:
    """Rows ordered by group: task counts by status and micro-credits charged and refunded.

    Example: `await usage(conn, [GroupBy.MODEL], UsageFilter())` gives one row per model ever used.
    """
    rows: dict[tuple[str, ...], UsageRow] = {}
    for row in await conn.execute(_task_counts(group_by, where)):
        group = _group(row, len(group_by))
        rows.setdefault(group, UsageRow(group)).tasks[row.status] = int(row.n)
    for row in await conn.execute(_money(group_by, where)):
        entry = rows.setdefault(_group(row, len(group_by)), UsageRow(_group(row, len(group_by))))
        if row.kind == EntryKind.CHARGE.value:
            entry.charged = -int(row.total)
        else:
            entry.refunded = int(row.total)
    for row in await conn.execute(_background_counts(group_by, where)):
        group = _group(row, len(group_by))
        rows.setdefault(group, UsageRow(group)).background = int(row.n)
    return [rows[group] for group in sorted(rows)]


async def net_spent(conn: AsyncConnection, key_id: str) -> int:
    """Micro-credits the key has spent over its life: its charges less its refunds."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(ledger.c.amount), 0)).where(
            ledger.c.key_id == key_id, ledger.c.kind.in_(MONEY_KINDS)
        )
    )
    return -int(total or 0)


def _task_counts(group_by: Sequence[GroupBy], where: UsageFilter) -> Any:
    columns = _columns(group_by, key=tasks.c.key_id, created=tasks.c.created_at)
    return (
        select(*columns, tasks.c.status, func.count().label("n"))
        .where(*_bounds(tasks.c.created_at, tasks.c.key_id, where))
        .group_by(*columns, tasks.c.status)
    )


def _background_counts(group_by: Sequence[GroupBy], where: UsageFilter) -> Any:
    table = background_requests
    by = {GroupBy.KEY: table.c.key_id, GroupBy.MODEL: table.c.model, GroupBy.DAY: utc_date(table.c.created_at)}
    columns = [by[group].label(f"g{n}") for n, group in enumerate(group_by)]
    return (
        select(*columns, func.count().label("n"))
        .where(*_bounds(table.c.created_at, table.c.key_id, where))
        .group_by(*columns)
    )


def _money(group_by: Sequence[GroupBy], where: UsageFilter) -> Any:
    columns = _columns(group_by, key=ledger.c.key_id, created=ledger.c.created_at)
    return (
        select(*columns, ledger.c.kind, func.sum(ledger.c.amount).label("total"))
        .select_from(ledger.outerjoin(tasks, tasks.c.id == ledger.c.task_id))
        .where(ledger.c.kind.in_(MONEY_KINDS), *_bounds(ledger.c.created_at, ledger.c.key_id, where))
        .group_by(*columns, ledger.c.kind)
    )


def _columns(group_by: Sequence[GroupBy], *, key: Any, created: Any) -> list[ColumnElement[Any]]:
    by = {GroupBy.KEY: key, GroupBy.MODEL: tasks.c.model, GroupBy.DAY: utc_date(created)}
    return [by[group].label(f"g{n}") for n, group in enumerate(group_by)]


def _bounds(created: Any, key: Any, where: UsageFilter) -> list[ColumnElement[bool]]:
    clauses = []
    if where.since is not None:
        clauses.append(created >= where.since)
    if where.until is not None:
        clauses.append(created < where.until)
    if where.key_id is not None:
        clauses.append(key == where.key_id)
    return clauses


def _group(row: Any, size: int) -> tuple[str, ...]:
    return tuple(str(row._mapping[f"g{n}"]) for n in range(size))
