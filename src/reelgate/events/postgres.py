"""PostgreSQL LISTEN/NOTIFY as the wake-up between processes: hints that name a task, never its state.

Every write that changes a task row also sends, in its transaction (so at commit, and never for a
rolled-back change), `NOTIFY reelgate_task` with the task's id, and for a task that is queued,
`NOTIFY "reelgate_queue:<backend>"`. Each process holds one dedicated listening connection
(`Listener`), reconnecting when it drops: a queued task wakes the processes that run its backend, and
a changed task is read once and published to this process's event bus, which fans it out to every
stream and page watching it here. The row stays the truth; when the connection is lost the slow polls
(the recovery sweep, a stream's re-read every half keep-alive) still see every change, later.

The payload is `<task id> <sender's clock> <sender>`: the time only feeds the notification-lag metric;
the sender names the runtime whose engine wrote the change (`announce_as`). A process publishes its own
changes to its bus as it writes them, so its listener skips the task notices it sent itself: a burst of
admissions is not read back, task by task, by the process that made them.
NOTIFY does not pass through PgBouncer in transaction (or statement) pooling mode: point
`REELGATE_DATABASE_URL` of every process at PostgreSQL itself or at a session-mode pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from weakref import WeakKeyDictionary

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.observability.metrics import Metrics
from reelgate.tasks.models import Task, TaskStatus

log = logging.getLogger(__name__)

TASK_CHANNEL = "reelgate_task"
#: How the listening connections show in `pg_stat_activity`.
APPLICATION_NAME = "reelgate-listener"
#: How long a dropped listening connection waits before connecting again (doubling up to the maximum).
RECONNECT_SECONDS = (0.5, 10.0)


def queue_channel(backend: str) -> str:
    """The channel that wakes the processes running `backend` (a channel name is at most 63 bytes)."""
    return f"reelgate_queue:{backend}"[:63]


def announce_as(engine: AsyncEngine) -> str:
    """The sender named in the notices of changes written through `engine` (made once per engine): the
    runtime that owns the engine gives it to its `Listener`, which then skips them."""
    return _SENDERS.setdefault(engine.sync_engine, secrets.token_hex(8))


#: Each runtime's engine's sender name (`announce_as`); an engine without one sends `-`.
_SENDERS: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


async def notify(conn: AsyncConnection, task: Task) -> None:
    """Hint, at commit, that `task` changed (and, if it is queued, that its backend has work): PostgreSQL
    only; a no-op on SQLite, whose processes share the in-process bus."""
    if conn.dialect.name != "postgresql":
        return
    payload = f"{task.id} {time.time():.6f} {_SENDERS.get(conn.sync_engine, '-')}"
    await conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": TASK_CHANNEL, "payload": payload})
    if task.status is TaskStatus.QUEUED:
        channel = queue_channel(task.backend)
        await conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def notify_all(conn: Connection, changed: list[Task]) -> None:
    """`notify` for many tasks in one statement per channel kind."""
    if conn.dialect.name != "postgresql" or not changed:
        return
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), hints(conn, changed))


def hints(conn: Connection, changed: list[Task]) -> list[dict[str, str]]:
    """The notices (`channel`, `payload`) that announce `changed`, written through `conn`."""
    sent = f"{time.time():.6f} {_SENDERS.get(conn.engine, '-')}"
    told = [{"channel": TASK_CHANNEL, "payload": f"{task.id} {sent}"} for task in changed]
    return told + [
        {"channel": queue_channel(task.backend), "payload": f"{task.id} {sent}"}
        for task in changed
        if task.status is TaskStatus.QUEUED
    ]


def asyncpg_dsn(database_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg connects to, from SQLAlchemy's `postgresql+asyncpg://` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One listening connection per process; reads a notified task once however many notices arrive."""

    def __init__(
        self,
        dsn: str,
        *,
        backends: Collection[str],
        on_queued: Callable[[str], None],
        watched: Callable[[str], bool],
        read: Callable[[str], Awaitable[Task | None]],
        publish: Callable[[Task], None],
        metrics: Metrics,
        own: str | None = None,
    ) -> None:
        self._dsn = dsn
        #: The sender name of this process's own changes (`announce_as`), already published here.
        self._own = own
        self._channels = [queue_channel(b) for b in sorted(backends)]
        self._on_queued = on_queued
        self._watched = watched
        self._read = read
        self._publish = publish
        self._metrics = metrics
        #: Tasks being read now; a task noticed again meanwhile is read once more after (`_again`).
        self._reading: set[str] = set()
        self._again: set[str] = set()
        self._readers: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, connecting again whenever the connection is lost."""
        delay = RECONNECT_SECONDS[0]
        while True:
            try:
                await self._listen_once()
                delay = RECONNECT_SECONDS[0]
            except Exception as exc:  # whatever broke the connection, listening must go on
                log.warning("notifications: listening connection lost (%r); again in %.1f s", exc, delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_SECONDS[1])

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME})
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        try:
            await conn.add_listener(TASK_CHANNEL, self._on_notice)
            for channel in self._channels:
                await conn.add_listener(channel, self._on_notice)
            self.connected.set()
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await closed.wait()
                if not closed.is_set():
                    await conn.fetchval("SELECT 1")  # a dead peer shows up here, not as a termination
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            for reader in list(self._readers):
                reader.cancel()

    def _on_notice(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        task_id, sent, sender = [*payload.split(" "), "", ""][:3]
        if sent:
            with contextlib.suppress(ValueError):
                self._metrics.notification_lag.observe(max(0.0, time.time() - float(sent)))
        if channel != TASK_CHANNEL:
            self._on_queued(task_id)
        elif sender != self._own and self._watched(task_id):
            self._schedule(task_id)

    def _schedule(self, task_id: str) -> None:
        if task_id in self._reading:
            self._again.add(task_id)
            return
        self._reading.add(task_id)
        reader = asyncio.create_task(self._fan_out(task_id))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)

    async def _fan_out(self, task_id: str) -> None:
        try:
            while True:
                self._again.discard(task_id)
                try:
                    task = await self._read(task_id)
                except Exception as exc:
                    log.warning("notifications: task %s could not be read (%r)", task_id, exc)
                    return
                if task is not None:
                    self._publish(task)
                if task_id not in self._again:
                    return
        finally:
            self._reading.discard(task_id)
