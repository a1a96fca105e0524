"""A worker's writes are fenced by its attempt; PostgreSQL claims the oldest queued task with SKIP LOCKED."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys, ledger
from reelgate.events.local import LocalEventBus
from reelgate.observability.metrics import Metrics
from reelgate.storage.local import LocalStorage
from reelgate.store.db import run_sync
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskError, TaskStatus
from reelgate.tasks.settle import fail_task
from reelgate.workers.recovery import recover
from reelgate.workers.runner import Worker
from tests.store.test_store import _task


async def _charged_task(engine: AsyncEngine, **changes: object) -> str:
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=5_000_000)
        task = replace(_task(key.id), **changes)  # type: ignore[arg-type]
        await ledger.debit(conn, key.id, task.price, task.id)
        await repo.insert_task(conn, task)
    return task.id


async def test_a_worker_that_lost_its_lease_cannot_write(engine: AsyncEngine) -> None:
    task_id = await _charged_task(engine)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    async with engine.begin() as conn:
        first = await repo.claim(conn, task_id, "paused-worker", long_ago)
    assert first is not None and first.attempts == 1
    # The paused worker's lease expires; the sweep requeues the task and a second worker claims it.
    assert await recover(engine, LocalEventBus(), lease_seconds=30, max_attempts=3) == [task_id]
    async with engine.begin() as conn:
        second = await repo.claim(conn, task_id, "new-worker", datetime.now(UTC))
        assert second is not None and second.attempts == 2
        await repo.set_progress(conn, task_id, 10, datetime.now(UTC), attempt=2)

    now = datetime.now(UTC)
    async with engine.begin() as conn:  # the paused worker wakes up and writes as attempt 1
        assert await repo.set_progress(conn, task_id, 90, now, attempt=1) is None
        assert await repo.heartbeat(conn, task_id, now, attempt=1) is False
        assert await repo.save_backend_state(conn, task_id, "job-of-attempt-1", now, attempt=1) is False
        done = await conn.run_sync(
            repo.complete_sync, task_id, share_id="s", video_file="v.mp4", thumbnail_file="t", now=now, attempt=1
        )
        assert done is None
        error = TaskError("storage_full", "disk full")
        assert await fail_task(conn, task_id, error, now, refund=True, attempt=1) is None
        assert await repo.requeue(conn, task_id, attempt=1) is None
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.IN_PROGRESS and task.attempts == 2
        assert task.progress == 10 and task.backend_state is None and task.video_file is None
        assert [e.kind for e in await ledger.entries(conn, task.key_id)] == ["credit", "charge"]

    async with engine.begin() as conn:  # the owner's writes go through, and the task is charged once
        assert await repo.heartbeat(conn, task_id, now, attempt=2) is True
        done = await conn.run_sync(
            repo.complete_sync, task_id, share_id="s", video_file="v.mp4", thumbnail_file="t", now=now, attempt=2
        )
        assert done is not None and done.status is TaskStatus.COMPLETED
        assert [e.kind for e in await ledger.entries(conn, done.key_id)] == ["credit", "charge"]


async def test_the_workers_one_hop_writes_are_fenced_too(engine: AsyncEngine) -> None:
    """The claim, progress writes and lease renewals a worker makes through `run_sync` (SQLite's twin)."""
    task_id = await _charged_task(engine)
    now = datetime.now(UTC)
    first = await run_sync(engine, lambda conn: repo.claim_sync(conn, task_id, "paused-worker", now), write=True)
    assert first is not None and first.attempts == 1
    async with engine.begin() as conn:  # the task is given to a second attempt
        assert await repo.requeue(conn, task_id, attempt=1) is not None
        assert await repo.claim(conn, task_id, "new-worker", now) is not None

    def writes_of(attempt: int) -> Any:
        return lambda conn: (
            repo.set_progress_sync(conn, task_id, 10 * attempt, now, attempt=attempt),
            repo.renew_lease(conn, task_id, now, attempt=attempt),
        )

    assert await run_sync(engine, writes_of(1), write=True) == (None, None)
    progressed, held = await run_sync(engine, writes_of(2), write=True)
    assert progressed is not None and progressed.progress == 20 and held is not None and held.attempts == 2


@pytest.mark.postgres
async def test_postgres_claims_the_oldest_queued_task_of_its_backends_once(postgres_url: str) -> None:
    from reelgate.store.db import create_engine, migrate

    engine = create_engine(postgres_url)
    await migrate(engine)
    try:
        start = datetime.now(UTC) - timedelta(minutes=1)
        mine = [await _charged_task(engine, created_at=start + timedelta(seconds=i)) for i in range(6)]
        other = await _charged_task(engine, backend="diffusers", created_at=start - timedelta(seconds=1))

        async def claim(worker: str) -> str | None:
            async with engine.begin() as conn:
                task = await repo.claim_next(conn, worker, datetime.now(UTC), backends=["procedural"])
            return task.id if task else None

        claimed = await asyncio.gather(*(claim(f"w{i}") for i in range(8)))
        taken = [task_id for task_id in claimed if task_id is not None]
        assert sorted(taken) == sorted(mine) and claimed.count(None) == 2  # each once, never the other backend
        async with engine.connect() as conn:
            depth = await repo.queued_by_backend(conn)
        assert depth == {"diffusers": 1}
        metrics = Metrics()
        metrics.set_queue_depth(depth)
        assert b'reelgate_queue_depth_by_backend{backend="diffusers"} 1.0' in metrics.exposition()
        async with engine.begin() as conn:
            first = await repo.claim_next(conn, "any", datetime.now(UTC))
        assert first is not None and first.id == other and first.attempts == 1
    finally:
        await engine.dispose()


class StalledBackend:
    """Renders forever, one progress step at a time, until it is cancelled."""

    name = "procedural"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def generate(self, spec: Any, workdir: Path, on_progress: Any) -> Any:
        (workdir / "partial.mp4").write_bytes(b"half a video")
        self.started.set()
        try:
            for step in range(1, 99):
                on_progress(step)
                await asyncio.sleep(0.02)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_worker_whose_task_was_given_away_stops_and_drops_its_files(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    task_id = await _charged_task(engine)
    backend = StalledBackend()
    worker = Worker(
        engine,
        {"procedural": backend},
        LocalStorage(tmp_path / "media"),
        LocalEventBus(),
        work_dir=tmp_path / "work",
        worker_id="paused-worker",
        heartbeat_seconds=0.05,
    )
    running = asyncio.create_task(worker.run(task_id))
    await asyncio.wait_for(backend.started.wait(), 10)
    async with engine.begin() as conn:  # its lease expired meanwhile: the sweep requeued it, another took it
        assert await repo.requeue(conn, task_id) is not None
        assert await repo.claim(conn, task_id, "new-worker", datetime.now(UTC)) is not None
    await asyncio.wait_for(running, 10)

    assert backend.cancelled and not (tmp_path / "work" / task_id).exists()
    async with engine.connect() as conn:
        task = await repo.get_task(conn, task_id)
        assert task is not None and task.status is TaskStatus.IN_PROGRESS and task.attempts == 2
        assert task.progress == 0 and task.error is None  # nothing the old attempt wrote afterwards
        assert [e.kind for e in await ledger.entries(conn, task.key_id)] == ["credit", "charge"]
