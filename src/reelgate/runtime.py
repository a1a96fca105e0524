"""The running parts of one reelgate process, built and torn down together in the app's lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.base import Backend, closing, lifecycle
from reelgate.backends.registry import make_backend
from reelgate.billing import keys
from reelgate.billing.limits import Limits
from reelgate.catalog import Catalog, ModelEntry
from reelgate.dispatch.local import LocalDispatcher
from reelgate.errors import ServiceUnavailable
from reelgate.events.local import LocalEventBus
from reelgate.events.postgres import Listener, announce_as, asyncpg_dsn
from reelgate.observability.metrics import Metrics
from reelgate.settings import Settings
from reelgate.storage.base import Storage
from reelgate.storage.local import LocalStorage
from reelgate.storage.s3 import S3Storage, make_store
from reelgate.storage.space import short_of_space
from reelgate.store.coalesce import Coalesced
from reelgate.store.db import create_engine, migrate, pool_size, run_sync, writing_engines
from reelgate.store.recent import Recent
from reelgate.tasks.service import Policy, TaskService
from reelgate.tasks.watchers import RowReader
from reelgate.webhooks.sender import prune_forever, send_forever, send_policy
from reelgate.workers import orphans, retention
from reelgate.workers.recovery import recover
from reelgate.workers.runner import Worker

log = logging.getLogger(__name__)

#: How long a key's row read for one request serves the next ones: long enough that a burst, or a chat
#: client's quick requests, read it once; short enough that a key disabled by another process (the CLI)
#: stops reading its tasks within a moment. Nothing that charges trusts it (`billing.keys.refusal`).
KEY_ROWS_KEPT_SECONDS = 2.0
#: The most key rows kept: every real key many times over; made-up keys are never kept.
KEY_ROWS_KEPT = 10_000
#: How long a client is asked to wait before trying again when the disk is short of space.
LOW_DISK_RETRY_AFTER = 60
#: How long a measure of the free space serves the admissions that follow (`Runtime.low_disk`).
DISK_MEASURED_SECONDS = 1.0


@dataclass
class Runtime:
    settings: Settings
    catalog: Catalog
    engine: AsyncEngine
    bus: LocalEventBus
    storage: Storage
    dispatcher: LocalDispatcher
    tasks: TaskService
    metrics: Metrics
    #: Re-reads the tasks this process's streams follow (`tasks/watchers.py`).
    rows: RowReader
    backends: Mapping[str, Backend] = field(default_factory=dict)
    #: When the free space was last measured, and the folders then short of it (`low_disk`).
    _disk_measured: tuple[float, list[Path]] = field(default=(-math.inf, []), init=False, repr=False)

    def backend_problems(self) -> dict[str, str]:
        """Why each backend that is not ready is not (loading, or failed to load), by name."""
        found = {name: lifecycle(backend) for name, backend in self.backends.items()}
        return {name: managed.problem for name, managed in found.items() if managed and managed.problem}

    def require_ready(self, entry: ModelEntry) -> None:
        """Refuse (503) a model whose backend failed to load, before anything is accepted or charged."""
        managed = lifecycle(self.backends[entry.backend]) if entry.backend in self.backends else None
        if managed is not None and managed.failed:
            raise ServiceUnavailable(f"The model `{entry.name}` is unavailable: its backend {managed.problem}.")
        if self.low_disk(fresh=False):
            raise ServiceUnavailable(
                "The server is short of disk space and takes no new videos now. Try again later.",
                retry_after=LOW_DISK_RETRY_AFTER,
            )

    @cached_property
    def key_rows(self) -> Recent[str, Any]:
        """API key rows by digest (`api/auth.py`): kept for `KEY_ROWS_KEPT_SECONDS`, else read for all the
        requests that arrive together in one query.

        A change to a key through this process (the admin API) drops every kept row at once; one made
        elsewhere (the CLI, another process) counts within seconds, and at once where money moves: the
        admission transaction reads the key's state under its lock (`billing.keys.refusal`).
        """

        async def read(digests: list[str]) -> dict[str, Any]:
            return await run_sync(self.engine, partial(keys.rows_by_digest, digests=digests))

        rows: Recent[str, Any] = Recent(Coalesced(read).get, ttl=KEY_ROWS_KEPT_SECONDS, size=KEY_ROWS_KEPT)
        for engine in writing_engines(self.engine):
            keys.on_changes(engine, rows.forget_all)
        return rows

    def low_disk(self, *, fresh: bool = True) -> list[Path]:
        """The folders a new video is written to (media, scratch, SQLite) short of `min_free_bytes`.

        Not `fresh`: as measured within the last `DISK_MEASURED_SECONDS` (an admission's check: three
        system calls a request, where a disk does not fill in a second, and a render that finds it full
        fails and is refunded). Each measure, fresh or not, serves the admissions that follow.
        """
        now = time.monotonic()
        if fresh or now - self._disk_measured[0] >= DISK_MEASURED_SECONDS:
            self._disk_measured = (now, short_of_space(self._video_folders, self.settings.min_free_bytes))
        return self._disk_measured[1]

    @cached_property
    def _video_folders(self) -> list[Path]:
        # Found once: resolving the database URL's path took a quarter of a millisecond per request.
        return video_folders(self.settings)


def video_folders(settings: Settings) -> list[Path]:
    # Videos in a bucket take no room here; they pass through the scratch folder.
    folders = [settings.work_dir] if settings.storage_url else [settings.media_dir, settings.work_dir]
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        folders.append(Path(url.database).parent)
    return folders


def build_backends(settings: Settings, catalog: Catalog, given: Mapping[str, Backend]) -> dict[str, Backend]:
    """One backend per name the catalog uses; ValueError for a name nobody provides."""
    backends = dict(given)
    users: dict[str, list[ModelEntry]] = {}
    for entry in catalog:
        if not settings.run_backends or entry.backend in settings.run_backends:
            users.setdefault(entry.backend, []).append(entry)
    for name, entries in users.items():
        if name not in backends:
            backends[name] = make_backend(name, settings, entries)
    return backends


def make_storage(settings: Settings, metrics: Metrics) -> Storage:
    """The bucket `REELGATE_STORAGE_URL` names, else the local media folder."""
    if not settings.storage_url:
        return LocalStorage(settings.media_dir)
    store = make_store(settings.storage_url, settings.s3_endpoint_url, settings.s3_addressing)
    return S3Storage(store, on_error=lambda operation: metrics.storage_errors.labels(operation).inc())


@asynccontextmanager
async def open_runtime(
    settings: Settings, catalog: Catalog, backends: Mapping[str, Backend], metrics: Metrics | None = None
) -> AsyncIterator[Runtime]:
    metrics = metrics or Metrics()
    engine = create_engine(settings.resolved_database_url, pool_size(settings.worker_slots))
    await migrate(engine)
    bus = LocalEventBus()
    storage = make_storage(settings, metrics)
    for folder in video_folders(settings):  # measuring a missing folder's free space walks its path each request
        folder.mkdir(parents=True, exist_ok=True)
    # With REELGATE_RUN_BACKENDS this process claims, dispatches and polls for only its own backends.
    only = frozenset(backends) if settings.run_backends else None
    worker = Worker(
        engine,
        backends,
        storage,
        bus,
        work_dir=settings.work_dir,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
        heartbeat_seconds=settings.lease_seconds / 3,
        refund_on_failure=not settings.charge_on_failure,
        refund_on={entry.name: entry.refund_on for entry in catalog if entry.refund_on},
        metrics=metrics,
        only=only,
    )
    dispatcher = LocalDispatcher(worker.run, settings.worker_slots)
    policy = Policy(
        limits=Limits(rpm=settings.rpm_limit, concurrency=settings.concurrency_limit),
        resend_protection=settings.resend_protection,
        retention=timedelta(days=settings.retention_days) if settings.retention_days else None,
    )
    rows = RowReader(engine, bus, poll_seconds=settings.keepalive_seconds / 2)
    tasks = TaskService(engine, dispatcher, bus, policy, metrics, storage, runs=only)
    runtime = Runtime(settings, catalog, engine, bus, storage, dispatcher, tasks, metrics, rows, backends)
    await dispatcher.start()
    managed = [m for m in map(lifecycle, backends.values()) if m is not None]
    # Loading weights takes minutes: readiness reports it while the server already answers.
    sweepers = [asyncio.create_task(m.start(), name="reelgate-backend-start") for m in managed]
    sweepers.append(asyncio.create_task(_sweep(runtime, only), name="reelgate-recovery"))
    sweepers.append(asyncio.create_task(rows.run(), name="reelgate-task-rows"))
    if settings.retention_days:
        expiry = retention.sweep_forever(engine, storage, settings.retention_sweep_seconds)
        sweepers.append(asyncio.create_task(expiry, name="reelgate-retention"))
    sweepers.append(asyncio.create_task(send_forever(engine, send_policy(settings)), name="reelgate-webhooks"))
    if settings.webhook_delivery_retention_days:
        keep = timedelta(days=settings.webhook_delivery_retention_days)
        pruning = prune_forever(engine, keep, settings.retention_sweep_seconds)
        sweepers.append(asyncio.create_task(pruning, name="reelgate-webhook-pruning"))
    cleanup = orphans.sweep_forever(engine, storage, settings.work_dir, settings)
    sweepers.append(asyncio.create_task(cleanup, name="reelgate-orphans"))
    if engine.dialect.name == "postgresql":
        listener = make_listener(runtime, settings.resolved_database_url)
        sweepers.append(asyncio.create_task(listener.run(), name="reelgate-notifications"))
    try:
        with _collector_for_serving():
            yield runtime
    finally:
        for sweeper in sweepers:
            sweeper.cancel()
        await asyncio.gather(*sweepers, return_exceptions=True)
        await dispatcher.stop()
        for backend in filter(None, map(closing, backends.values())):
            await backend.close()
        await engine.dispose()


#: The garbage collector's thresholds while a runtime serves (Python's own are 700, 10, 10).
COLLECTOR_THRESHOLDS = (10_000, 20, 50)


@contextmanager
def _collector_for_serving() -> Iterator[None]:
    """The garbage collector set for a server that holds thousands of streams.

    What start-up made (modules, routes, schemas, tables, compiled statements: about 160,000 objects)
    lives as long as the runtime, so it is frozen: full passes leave it alone. 500 streams opened at once
    met two such passes of about 90 ms, and their first bytes waited behind them.

    The thresholds are raised (`COLLECTOR_THRESHOLDS`): with Python's own, a burst of 2,000 new streams
    met about 800 young passes and six full ones, a second of collecting in all, the longest pass 250 ms
    (bench/streams.py; first byte p50 2.2 s). Raised, it met a tenth as many passes, at most one of them
    full, and first bytes came 25-30% sooner. Objects freed by their reference counts (nearly all of a
    request's) never wait for the collector; cycles still go, only in fewer, larger passes.

    Both are undone when the runtime stops.
    """
    thresholds = gc.get_threshold()
    gc.collect()  # what start-up already dropped is not kept for good
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def make_listener(runtime: Runtime, database_url: str) -> Listener:
    """PostgreSQL's wake-ups for this process: its backends' new tasks, and changes of tasks watched here
    (the tasks noticed together read in one query: a group of 500 admissions notifies 500 at once)."""
    return Listener(
        asyncpg_dsn(database_url),
        backends=runtime.backends,
        on_queued=runtime.dispatcher.submit,
        watched=runtime.bus.watching,
        read=runtime.rows.read,
        publish=runtime.bus.refreshed,
        metrics=runtime.metrics,
        own=announce_as(runtime.engine),  # its own changes are published as they are written
    )


async def _sweep(runtime: Runtime, only: frozenset[str] | None) -> None:
    """Recover tasks of dead workers and dispatch what is queued (of the backends run here), at start and
    every `queue_poll_seconds` (at most half a lease)."""
    settings = runtime.settings
    while True:
        try:
            queued = await recover(
                runtime.engine,
                runtime.bus,
                lease_seconds=settings.lease_seconds,
                max_attempts=settings.max_attempts,
                refund=not settings.charge_on_failure,
                metrics=runtime.metrics,
                backends=only,
            )
            for task_id in queued:
                runtime.dispatcher.submit(task_id)
        except Exception:
            log.exception("recovery sweep failed; trying again")
        await asyncio.sleep(min(settings.lease_seconds / 2, settings.queue_poll_seconds))


async def run_worker(settings: Settings) -> None:
    """`reelgate worker`: render queued tasks of this process's backends, with no HTTP, until a signal.

    Another process (`reelgate serve`, sharing the database and the data folder) accepts and bills the
    requests; this one claims their tasks, renders them and finishes them, and the clients see the
    progress through the database.
    """
    catalog = Catalog.build(settings.models)
    backends = build_backends(settings, catalog, {})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_runtime(settings, catalog, backends) as runtime:
        log.info("worker ready: rendering %s", ", ".join(sorted(runtime.backends)) or "nothing")
        await stop.wait()
    log.info("worker stopped")
