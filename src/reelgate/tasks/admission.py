"""Group commit: requests that arrive together are admitted in one transaction.

Admitting a request writes (a charge, a task), so on SQLite every admission waits for the one writer,
and with one transaction per request 500 requests arriving at once wait for each other, each paying
for its own BEGIN, COMMIT and pool checkout. Here a request joins the group waiting for the next
transaction; one transaction at a time admits a whole group:

1. lock the group's keys (in sorted order, so that two processes never wait for each other) and read
   their balances and states, in one statement: a key disabled, deleted or expired since the request
   read it (in another process, say, while this one kept its row) is refused here,
2. read the running tasks with any of the group's request hashes, once,
3. decide each request in arrival order, in Python, exactly as one transaction each would: join a
   running task or an identical request earlier in the group, else charge it if the balance covers it,
4. write every charge and every task: with one statement per table on SQLite, and in one statement on
   PostgreSQL, where each statement is a round trip (`_write_at_once`).

The guarantees are those of one transaction per request: one charge per task, never an overdrawn key,
an identical request joins the running task. Requests that need per-request reads under the lock (an
Idempotency-Key, a key with request limits) are not grouped: `TaskService` admits them one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Text,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import ReturningUpdate

from reelgate.billing import keys, ledger
from reelgate.billing.ledger import Charge
from reelgate.errors import ReelgateError
from reelgate.events.postgres import hints
from reelgate.store.db import is_unavailable, plain_rows, run_sync
from reelgate.store.tables import api_keys, tasks
from reelgate.store.tables import ledger as ledger_entries
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskStatus

log = logging.getLogger(__name__)

#: The most requests one transaction admits; more wait for the next.
MAX_GROUP = 500
RUNNING = (TaskStatus.QUEUED.value, TaskStatus.IN_PROGRESS.value)
#: What admission reads of each key under its lock: the balance, and whether the key may be used.
KEY_STATE = (
    api_keys.c.id,
    api_keys.c.balance,
    api_keys.c.hint,
    api_keys.c.disabled,
    api_keys.c.deleted,
    api_keys.c.expires_at,
)

#: What a request becomes: its new task (True) or the running task it joined (False), or the error
#: that refused it.
Outcome = tuple[Task, bool] | ReelgateError


@dataclass
class Request:
    #: The task this request makes if it is not joined to another; charged its price.
    task: Task
    request_hash: str
    join_running: bool
    outcome: asyncio.Future[tuple[Task, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(self, engine: AsyncEngine, *, resend_protection: bool) -> None:
        self._engine = engine
        self._joining = resend_protection
        self._waiting: list[Request] = []
        self._committing: asyncio.Task[None] | None = None

    async def admit(self, task: Task, request_hash: str, *, join_running: bool) -> tuple[Task, bool]:
        """`(task, True)` once it is charged and stored, or `(running task, False)` for a request that joined
        one; the ReelgateError that refused it otherwise."""
        request = Request(task, request_hash, join_running)
        self._waiting.append(request)
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_all(), name="reelgate-admissions")
        return await request.outcome

    async def _commit_all(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                await self._commit(group)
        finally:
            self._committing = None

    async def _commit(self, group: list[Request]) -> None:
        outcomes: list[Outcome | Exception]
        try:
            outcomes = list(await self._transact(group))
        except Exception as exc:
            if len(group) > 1 and not is_unavailable(exc):
                # Something in one request broke the statement: admit each alone so that only it fails.
                log.warning("a group of %d admissions failed (%r); admitting them one by one", len(group), exc)
                for request in group:
                    await self._commit([request])
                return
            outcomes = [exc] * len(group)
        for request, outcome in zip(group, outcomes, strict=True):
            if request.outcome.done():  # the request went away meanwhile; its task stands
                continue
            if isinstance(outcome, BaseException):
                request.outcome.set_exception(outcome)
            else:
                request.outcome.set_result(outcome)

    async def _transact(self, group: list[Request]) -> list[Outcome]:
        # On SQLite on the event loop, or in a worker thread when another connection holds the lock (`run_sync`).
        return await run_sync(self._engine, partial(decide_and_write, group=group, joining=self._joining), write=True)


def decide_and_write(conn: Connection, group: list[Request], joining: bool) -> list[Outcome]:
    """Admit a group in the transaction `conn` is in; what became of each request, in order."""
    key_ids = sorted({request.task.key_id for request in group})
    hashes = [r.request_hash for r in group if r.join_running] if joining else []
    postgres = conn.dialect.name == "postgresql"
    decide = Decisions(_locked_keys(conn, key_ids, postgres), _running(conn, hashes, postgres), joining=joining)
    outcomes = [decide(request) for request in group]
    if postgres:
        _write_at_once(conn, decide.charges, decide.created)
    else:
        ledger.charge_all(conn, decide.charges)
        repo.insert_tasks(conn, decide.created)
    return outcomes


def _locked_keys(conn: Connection, key_ids: list[str], postgres: bool) -> dict[str, Any]:
    """The keys' balances and states (`keys.refusal`), read as their rows are locked for the rest of the
    transaction: on PostgreSQL in one statement that locks them in sorted order (so that two processes
    never wait for each other), on SQLite by a write, which takes the one writer's lock."""
    rows: Iterable[Any]
    if postgres:
        rows = conn.execute(_LOCK_IN_ORDER, {"key_ids": key_ids})
    elif len(key_ids) == 1:  # a lone request's: the driver runs it (`plain_rows`)
        rows = plain_rows(conn, _LOCK_ONE_BY_WRITE, {"key_id": key_ids[0]})
    else:
        rows = conn.execute(_LOCK_BY_WRITE, {"key_ids": key_ids})
    return {row.id: row for row in rows}


def _running(conn: Connection, hashes: list[str], postgres: bool) -> dict[str, Task]:
    """The newest running task of each hash."""
    if not hashes:
        return {}
    wanted = sorted(set(hashes))
    rows: Iterable[Any]
    if postgres:
        rows = conn.execute(_RUNNING_WITH_ANY_HASH, {"hashes": wanted})
    elif len(wanted) == 1:
        rows = plain_rows(conn, _RUNNING_WITH_HASH, {"hash": wanted[0]})
    else:
        rows = conn.execute(_RUNNING_WITH_HASHES, {"hashes": wanted})
    return {row.request_hash: Task.from_row(row) for row in rows}


def _write_at_once(conn: Connection, charges: list[Charge], created: list[tuple[Task, str | None]]) -> None:
    """PostgreSQL: the keys' new balances, the ledger entries, the tasks and their notices, in one statement.

    Each statement is a round trip, and in a burst the event loop answers each only after a turn through
    every request that arrived meanwhile: a group's transaction took 60-70 ms with one statement per
    table. Here every column travels as one array (`unnest`), so the statement's text is the same for a
    group of 1 or 500, and each connection prepares it once.
    """
    if not charges:  # every request joined a running task or was refused
        return
    balances = ledger.last_balances(charges)
    rows = [repo.task_row(task, request_hash) for task, request_hash in created]
    notices = hints(conn, [task for task, _ in created])
    values: dict[str, Any] = {"balance_keys": list(balances), "balances": list(balances.values())}
    values |= _arrays("entry_", ledger.charge_entries(charges))
    values |= _arrays("task_", rows)
    values |= _arrays("notice_", notices)
    conn.execute(_group_write(tuple(rows[0])), values)


def _arrays(prefix: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column, each named `prefix` + the column's name."""
    return {prefix + name: [row[name] for row in rows] for name in rows[0]}


@lru_cache
def _group_write(task_columns: tuple[str, ...]) -> Select[Any]:
    """`_write_at_once`'s statement (built once: the columns a task row has are always the same)."""
    balances = func.unnest(_array("balance_keys", api_keys.c.id), _array("balances", api_keys.c.balance))
    new_balances = balances.table_valued("id", "balance").render_derived(name="new_balance")
    set_balances = update(api_keys).where(api_keys.c.id == new_balances.c.id).values(balance=new_balances.c.balance)
    entries = insert(ledger_entries).from_select(ENTRY_COLUMNS, _rows_of(ledger_entries, "entry_", ENTRY_COLUMNS))
    new_tasks = insert(tasks).from_select(task_columns, _rows_of(tasks, "task_", task_columns))
    notices = func.unnest(_array("notice_channel", None), _array("notice_payload", None))
    told = notices.table_valued("channel", "payload").render_derived(name="notice")
    return (
        select(func.pg_notify(told.c.channel, told.c.payload))
        .select_from(told)
        .add_cte(set_balances.cte("set_balances"), entries.cte("entries"), new_tasks.cte("new_tasks"))
    )


def _array(name: str, column: Any) -> BindParameter[Any]:
    """An array parameter of `column`'s type (text where `column` is None)."""
    return bindparam(name, type_=ARRAY(column.type if column is not None else Text()))


def _rows_of(table: Any, prefix: str, columns: tuple[str, ...]) -> Select[Any]:
    """The rows given as one array per column (`_arrays`), in order."""
    return select(*(func.unnest(_array(prefix + name, table.c[name])) for name in columns))


#: The columns of a charge's ledger entry (`ledger.charge_entries`).
ENTRY_COLUMNS = ("key_id", "task_id", "kind", "amount", "balance_after", "note", "created_at")


# The statements each admission runs, built once: building them took as long as SQLite ran them. On SQLite
# a group of one key or one hash (a lone request's) has a statement of its own with `=`: SQLAlchemy rewrites
# an expanding `IN` at each execution, an eighth of a lone admission's instructions.
_THEIRS = api_keys.c.id.in_(bindparam("key_ids", expanding=True))
#: Each of the running statuses a parameter of its own: a fixed text (`IN` a tuple would expand).
_IS_RUNNING = tasks.c.status.in_([literal(status) for status in RUNNING])
#: Takes the lock an UPDATE of the row takes. Its keys are one array: one statement's text for any group.
_LOCK_IN_ORDER = (
    select(*KEY_STATE)
    .where(api_keys.c.id == any_(_array("key_ids", api_keys.c.id)))
    .order_by(api_keys.c.id)
    .with_for_update(key_share=True)
)


def _lock_by_write(which: ColumnElement[bool]) -> ReturningUpdate[Any]:
    return (
        update(api_keys)
        .where(which)
        .values(balance=api_keys.c.balance)
        .returning(*KEY_STATE)
        .execution_options(**ledger.BALANCE_ONLY)
    )


_LOCK_BY_WRITE = _lock_by_write(_THEIRS)
_LOCK_ONE_BY_WRITE = _lock_by_write(api_keys.c.id == bindparam("key_id"))
_RUNNING_WITH_HASHES = (
    select(tasks)
    .where(tasks.c.request_hash.in_(bindparam("hashes", expanding=True)), _IS_RUNNING)
    .order_by(tasks.c.created_at)
)
_RUNNING_WITH_HASH = (
    select(tasks).where(tasks.c.request_hash == bindparam("hash"), _IS_RUNNING).order_by(tasks.c.created_at)
)
_RUNNING_WITH_ANY_HASH = (
    select(tasks)
    .where(tasks.c.request_hash == any_(_array("hashes", tasks.c.request_hash)), tasks.c.status.in_(RUNNING))
    .order_by(tasks.c.created_at)
)


class Decisions:
    """Each request of a group in turn, as its own transaction would have decided it."""

    def __init__(self, locked: dict[str, Any], running: dict[str, Task], *, joining: bool) -> None:
        self._locked = locked
        self._now = datetime.now(UTC)
        self._balances = {key_id: int(row.balance) for key_id, row in locked.items()}
        self._joining = joining
        #: Running tasks by request hash, the group's new ones added as they are decided.
        self._running = dict(running)
        self.charges: list[Charge] = []
        self.created: list[tuple[Task, str | None]] = []

    def __call__(self, request: Request) -> Outcome:
        task = request.task
        refused = keys.refusal(self._locked[task.key_id], self._now)
        if refused is not None:  # disabled, deleted or expired since the request's key was read
            return refused
        joined = self._running.get(request.request_hash) if self._joining and request.join_running else None
        if joined is not None:
            return joined, False
        left = self._balances[task.key_id]
        if left < task.price:
            return ledger.too_low(task.key_id, task.price, left)
        self._balances[task.key_id] = left - task.price
        self.charges.append(Charge(task.key_id, task.id, task.price, left - task.price))
        self.created.append((task, request.request_hash))
        self._running[request.request_hash] = task
        return task, True
