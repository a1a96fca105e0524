"""Engine creation and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, bindparam, event, insert, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

T = TypeVar("T")

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: Key of the PostgreSQL advisory lock that one migrating process holds while the others wait
#: (a fixed key that only reelgate's migrations use).
MIGRATION_LOCK = 0x1A5F6C8E2B3D4F70


#: How long a request waits for a pooled connection before it is answered 503 (busy, try again).
POOL_WAIT_SECONDS = 10.0

#: A pooled PostgreSQL connection that rested longer than this is pinged before use (`_ping_if_rested`).
PING_AFTER_REST_SECONDS = 1.0


def pool_size(worker_slots: int) -> int:
    """Connections a process keeps: one per render slot (its progress writes and heartbeats) plus those
    of the request path, which reads and writes for many requests at once (one admission transaction,
    one key read, one task-row read at a time) and the sweepers, with room for the odd request of its own.
    Twice as many more may open under a burst."""
    return worker_slots + 8


def create_engine(url: str, connections: int = 10) -> AsyncEngine:
    """An async engine keeping `connections` (`pool_size`); SQLite gets WAL, a busy timeout and enforced
    foreign keys."""
    pool = {"pool_size": connections, "max_overflow": 2 * connections, "pool_timeout": POOL_WAIT_SECONDS}
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, **pool)
        event.listen(engine.sync_engine.pool, "checkin", _note_rest)
        event.listen(engine.sync_engine.pool, "checkout", partial(_ping_if_rested, engine.sync_engine.dialect))
        return engine
    database = parsed.database if parsed.database != ":memory:" else None
    if database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **(pool if database else {}))
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_twin(engine: AsyncEngine) -> Engine | None:
    """The synchronous engine on the same SQLite file (None for any other database), made on first use
    and disposed with `engine`.

    The request path's reads and admissions, and a render worker's claim, progress writes and heartbeats,
    use it on SQLite (`run_sync`): a read runs on the event loop, and a transaction in a worker thread
    costs one hand-over between threads for the lot, where through aiosqlite each statement costs three
    or four.
    """
    twin = _twin(engine)
    return twin.threaded if twin else None


def writing_engines(engine: AsyncEngine) -> list[Engine]:
    """Every engine that writes to `engine`'s database: itself and, on a SQLite file, its twins."""
    twin = _twin(engine)
    return [engine.sync_engine, *([twin.threaded, twin.inline] if twin else [])]


async def run_sync(engine: AsyncEngine, work: Callable[[Connection], T], *, write: bool = False) -> T:
    """`work(conn)` on the database, in a transaction if `write`: on SQLite on its twin, elsewhere through
    the async engine.

    On SQLite a read runs here: in WAL mode it never waits for the writer, and the hand-over to a thread
    and back cost more than the read itself (about half a millisecond of a lone request's first byte, more
    while the loop is busy). A write runs here too when the writer's lock is free at once, which it mostly
    is: SQLite writes one request's admission in about a third of a millisecond, a group of 300 in about
    ten. When another connection holds the lock, it runs again from the start in a worker thread, where it
    may wait for it (`_Twin`).
    Elsewhere (PostgreSQL) a read runs outside a transaction: each of its statements sees what was
    committed when that statement began.
    `work` must be one that can be run again: its connection's statements and nothing else.
    """
    twin = _twin(engine)
    if twin is None:
        if write:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        async with engine.connect() as conn:
            # No BEGIN and ROLLBACK around a read: each is a round trip, and in a burst the event loop
            # answers each of them only after a turn through every request that arrived meanwhile.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await conn.run_sync(work)
    if not write:
        return _run_on(twin.threaded, work, write)
    try:
        result = _run_on(twin.inline, work, write)
    except OperationalError as exc:
        if not _busy(exc):
            raise
        return await asyncio.to_thread(_run_on, twin.threaded, work, write)
    twin.checkpoint_soon()
    return result


def _run_on(twin: Engine, work: Callable[[Connection], T], write: bool) -> T:
    with twin.begin() if write else twin.connect() as conn:
        return work(conn)


def _busy(exc: OperationalError) -> bool:
    """Whether SQLite refused a statement because another connection holds the lock it needs
    (SQLITE_BUSY and its extended codes); the transaction was rolled back."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


#: How often, at most, the WAL is checkpointed after writes made on the event loop (`_Twin`).
CHECKPOINT_SECONDS = 1.0


@dataclass(eq=False)
class _Twin:
    """The synchronous engines on an async SQLite engine's file.

    `threaded` waits up to 30 s for the writer's lock (`busy_timeout`): reads on the event loop, and writes
    in a worker thread. `inline` never waits (`busy_timeout=0`): a write tried on the event loop fails at
    once when the lock is taken, and goes to `threaded`. Nor does it checkpoint the WAL when it commits,
    which would write the database file and sync it to disk on the event loop: after its commits, a worker
    thread checkpoints at most every `CHECKPOINT_SECONDS` (`PASSIVE`: it waits for no one).
    """

    threaded: Engine
    inline: Engine
    checkpointed_at: float = -CHECKPOINT_SECONDS
    checkpointing: bool = False

    def checkpoint_soon(self) -> None:
        now = time.monotonic()
        if self.checkpointing or now - self.checkpointed_at < CHECKPOINT_SECONDS:
            return
        self.checkpointing, self.checkpointed_at = True, now
        asyncio.get_running_loop().run_in_executor(None, self._checkpoint).add_done_callback(self._checkpointed)

    def _checkpoint(self) -> None:
        with self.threaded.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self.checkpointing = False
        if not done.cancelled() and done.exception() is not None:
            log.warning("checkpointing the SQLite WAL failed: %r", done.exception())


def _twin(engine: AsyncEngine) -> _Twin | None:
    if engine not in _TWINS:
        _TWINS[engine] = _make_twin(engine)
    return _TWINS[engine]


def _make_twin(engine: AsyncEngine) -> _Twin | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    threaded = create_sync_engine(
        url.set(drivername="sqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},  # used by one thread at a time, any thread
        # As many as the async engine keeps (`pool_size`; one render slot's worth for an engine made
        # elsewhere): a write that found the lock taken, a read, and each render slot's progress writes and
        # heartbeats (workers/runner.py), each one at a time.
        pool_size=engine.pool.size() if isinstance(engine.pool, QueuePool) else pool_size(1),
        max_overflow=2,
        pool_timeout=POOL_WAIT_SECONDS,
    )
    # Used on the event loop's thread, one transaction at a time, start to end without a pause: one connection.
    inline = create_sync_engine(
        url.set(drivername="sqlite"),
        connect_args={"timeout": 0, "check_same_thread": False},
        pool_size=1,
        max_overflow=2,
        pool_timeout=POOL_WAIT_SECONDS,
    )
    event.listen(threaded, "connect", _sqlite_pragmas)
    event.listen(inline, "connect", _inline_pragmas)

    def dispose(_engine: Engine) -> None:
        threaded.dispose()
        inline.dispose()

    event.listen(engine.sync_engine, "engine_disposed", dispose)
    return _Twin(threaded, inline)


#: Each async SQLite engine's twins (see `_Twin`); None for other databases.
_TWINS: WeakKeyDictionary[AsyncEngine, _Twin | None] = WeakKeyDictionary()


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or used now (server down, connection refused or
    lost, pool exhausted, disk full), rather than that a statement was wrong: worth a 503 and a retry.
    """
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    # asyncpg raises these unwrapped when it cannot open a connection at all.
    if isinstance(exc, (PoolTimeout, ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE


#: The errors by which a connection attempt says the database's host cannot be reached.
UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN})


def _note_rest(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RESTING_SINCE] = time.monotonic()


def _ping_if_rested(dialect: Dialect, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Ping a connection that rested in the pool, as `pool_pre_ping` pings every one.

    A connection dies while it rests (the server restarted, a proxy or firewall dropped it when idle), so one
    that rested is pinged, and one that does not answer is replaced. One taken again within
    `PING_AFTER_REST_SECONDS` is not: under load that skips a round trip per checkout, a tenth of the event
    loop's time in a burst of 500 streams. A server that restarts under load fails the statements then in
    flight either way; the first such failure invalidates the whole pool (SQLAlchemy's disconnect handling),
    so the next checkouts connect afresh.
    """
    rested_since = record.info.pop(_RESTING_SINCE, None)
    if rested_since is None or time.monotonic() - rested_since <= PING_AFTER_REST_SECONDS:
        return
    # asyncpg's adapter pings inside BEGIN ... ROLLBACK unless the connection is in autocommit: three round
    # trips where one does, at the start of a burst on every connection that rested.
    dbapi_connection.autocommit = True
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError("a pooled connection did not answer its ping") from exc
    finally:
        dbapi_connection.autocommit = False
    if not alive:
        raise DisconnectionError("a pooled connection did not answer its ping")


_RESTING_SINCE = "reelgate_resting_since"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _inline_pragmas(dbapi_connection: Any, record: Any) -> None:
    """`_sqlite_pragmas` for the connection that writes on the event loop: it never waits for the lock and
    leaves checkpoints to a worker thread (`_Twin`)."""
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


async def migrate(engine: AsyncEngine) -> None:
    """Apply every Alembic migration to the engine's database (idempotent).

    On PostgreSQL the migrations run under a transaction-scoped advisory lock, so any number of processes
    started together (a fleet's deploy) migrate one at a time: the first upgrades, the others then find the
    schema at head and change nothing. SQLite's single writer already serialises them.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """`conn.execute(insert(table), rows)` for rows that all have the same columns. On SQLite the driver's
    `executemany` writes them, each value put through its column's bind processor as SQLAlchemy would.

    SQLAlchemy works out every row's parameters in Python, column by column, through the compiled statement:
    for a group of 500 admissions (a task has 37 columns) that was a third of the group's time on SQLite.
    """
    if rows:
        plain_write(conn, _insert_of(table, tuple(rows[0])), rows)


@lru_cache(maxsize=32)
def _insert_of(table: Table, columns: tuple[str, ...]) -> Executable:
    """The INSERT of `columns`, each value a parameter named as its column (built once per table and columns)."""
    return insert(table).values({name: bindparam(name) for name in columns})


def plain_rows(conn: Connection, statement: Executable, params: dict[str, Any]) -> list[Any]:
    """The rows `statement` (a SELECT, or a write with RETURNING) returns for `params`, each a named tuple of
    its columns (`row.name`, `row._asdict()`). On SQLite the driver runs it by itself, each parameter put
    through its bind processor and each value read through its column's result processor, as SQLAlchemy
    would; elsewhere, and for a statement with an expanding parameter (`IN` a list), SQLAlchemy runs it.

    SQLAlchemy's own execution of a statement costs a lone admission more than SQLite's work on it does.
    Statements run here fire no engine events: keep it to those that change no key's settings (see
    `billing.keys.on_changes`).
    """
    driver = _driver_statement(statement, conn.dialect)
    if driver is None:
        return list(conn.execute(statement, params))
    found = _on_driver(conn, driver.sql, driver.parameters(params))
    make, readers = driver.row._make, driver.readers
    return [make([r(v) if r else v for r, v in zip(readers, row, strict=True)]) for row in found]


def plain_write(conn: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """`conn.execute(statement, rows)` for a write without RETURNING: on SQLite by the driver's `executemany`
    (see `plain_rows`)."""
    driver = _driver_statement(statement, conn.dialect)
    if driver is None:
        conn.execute(statement, rows)
        return
    _on_driver(conn, driver.sql, [driver.parameters(row) for row in rows], many=True)


def _on_driver(conn: Connection, sql: str, parameters: Any, *, many: bool = False) -> list[Any]:
    """The SQLite driver's own `execute` (or `executemany`) in `conn`'s transaction, and the rows it returned;
    its errors raised as SQLAlchemy raises them (`run_sync` tells a busy database by them)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        if many:
            cursor.executemany(sql, parameters)
            return []
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())
    except driver_error as exc:
        raise DBAPIError.instance(sql, parameters, exc, driver_error) from exc
    finally:
        cursor.close()


@dataclass(frozen=True)
class _DriverStatement:
    sql: str
    #: Each `?` in turn: the parameter's name, its bind processor, and its value where the statement
    #: fixes one (`literal`), else `_GIVEN`.
    binds: tuple[tuple[str, Any, Any], ...]
    #: A returned row (a named tuple of its columns), and each column's result processor in order.
    row: Any
    readers: tuple[Any, ...]

    def parameters(self, given: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, process, fixed in self.binds:
            value = given[name] if fixed is _GIVEN else fixed
            values.append(process(value) if process else value)
        return tuple(values)


_GIVEN = object()


@lru_cache(maxsize=64)
def _driver_statement(statement: Executable, dialect: Dialect) -> _DriverStatement | None:
    if dialect.paramstyle != "qmark":
        return None
    compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
    names = list(compiled.positiontup or [])
    if any(compiled.binds[name].expanding for name in names):  # its text changes with each list's length
        return None
    binds = tuple(
        (name, bind.type.dialect_impl(dialect).bind_processor(dialect), _GIVEN if bind.required else bind.value)
        for name in names
        for bind in [compiled.binds[name]]
    )
    exported = list(getattr(statement, "exported_columns", ()))
    row = namedtuple("Row", [column.key for column in exported])  # type: ignore[misc]
    readers = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in exported)
    return _DriverStatement(str(compiled), binds, row, readers)
