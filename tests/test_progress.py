"""The progress reporter: coalesced writes, a stop that never cuts a write in half, a clean shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from reelgate.store.db import create_engine
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskStatus
from reelgate.workers.progress import ProgressReporter
from tests.conftest import live_server, make_settings


async def _nothing() -> None:
    return None


async def test_stop_lets_a_write_in_flight_finish() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    written: list[int] = []

    async def write(percent: int) -> None:
        started.set()
        await release.wait()  # a transaction in progress
        written.append(percent)

    reporter = ProgressReporter(write, _nothing, heartbeat_seconds=60, spacing=0)
    runner = asyncio.create_task(reporter.run())
    reporter(40)
    await started.wait()
    reporter.stop()
    await asyncio.sleep(0.05)
    assert not runner.done()  # still inside the write, not cancelled
    release.set()
    await asyncio.wait_for(runner, 5)
    assert written == [40]


async def test_progress_is_coalesced_and_capped_below_100() -> None:
    written: list[int] = []

    async def write(percent: int) -> None:
        written.append(percent)

    reporter = ProgressReporter(write, _nothing, heartbeat_seconds=60, spacing=0)
    runner = asyncio.create_task(reporter.run())
    for percent in (5, 3, 50, 100):
        reporter(percent)
    await asyncio.sleep(0.05)
    reporter.stop()
    await asyncio.wait_for(runner, 5)
    assert written == [99]  # one write for the burst; 100 waits for the stored files


async def test_writes_are_spaced_and_a_stop_does_not_wait_for_the_next() -> None:
    written: list[tuple[int, float]] = []

    async def write(percent: int) -> None:
        written.append((percent, asyncio.get_running_loop().time()))

    started = asyncio.get_running_loop().time()
    reporter = ProgressReporter(write, _nothing, heartbeat_seconds=60, spacing=0.3)
    runner = asyncio.create_task(reporter.run())
    reporter(10)
    await asyncio.sleep(0.05)
    assert written == []  # the first step waits for the spacing from the start...
    await asyncio.sleep(0.3)
    assert [percent for percent, _ in written] == [10] and written[0][1] - started >= 0.29  # ...then goes
    for percent in (20, 30, 40):
        reporter(percent)
        await asyncio.sleep(0.02)
    assert len(written) == 1  # the next ones wait for the spacing...
    await asyncio.sleep(0.4)
    assert [percent for percent, _ in written] == [10, 40]  # ...and are written as one
    assert written[1][1] - written[0][1] >= 0.29
    reporter(50)
    await asyncio.sleep(0.05)
    stopped_at = asyncio.get_running_loop().time()
    reporter.stop()  # in the pause before 50 would be written: the reporter stops now, not after it
    await asyncio.wait_for(runner, 5)
    assert asyncio.get_running_loop().time() - stopped_at < 0.1 and [p for p, _ in written] == [10, 40]


async def test_the_last_step_is_written_at_the_end_only_when_the_spacing_allows() -> None:
    written: list[int] = []

    async def write(percent: int) -> None:
        written.append(percent)

    reporter = ProgressReporter(write, _nothing, heartbeat_seconds=60, spacing=0.3)
    reporter(100)
    await asyncio.sleep(0)
    await reporter.finish()
    assert written == []  # a render that ended within the spacing: its completion writes 100 next
    await asyncio.sleep(0.3)
    await reporter.finish()
    assert written == [99]  # a longer one shows its last step while its files are stored


async def test_failed_writes_and_heartbeats_do_not_stop_the_reporter() -> None:
    """The database away for a while: the generation goes on, and the figure is written once it is back."""
    down = True
    written: list[int] = []
    beats = 0

    async def write(percent: int) -> None:
        if down:
            raise ConnectionRefusedError("the database is away")
        written.append(percent)

    async def heartbeat() -> None:
        nonlocal beats
        beats += 1
        raise ConnectionRefusedError("the database is away")

    reporter = ProgressReporter(write, heartbeat, heartbeat_seconds=0.02, spacing=0)
    runner = asyncio.create_task(reporter.run())
    reporter(30)
    await asyncio.sleep(0.1)
    assert not runner.done() and beats >= 2 and written == []
    down = False
    await reporter.flush()
    reporter.stop()
    await asyncio.wait_for(runner, 5)
    assert written == [30]


async def test_shutting_down_mid_render_puts_the_task_back_in_the_queue(tmp_path: Path) -> None:
    """A graceful stop while a video renders requeues it (the next start renders it again)."""
    settings = make_settings(tmp_path, models={"sora-2": {"fps": 24}})
    async with live_server(settings) as server, httpx.AsyncClient(timeout=30) as client:
        key = await server.create_key("10")
        created = await client.post(
            f"{server.url}/v1/videos", json={"prompt": "雨夜的街道"}, headers={"Authorization": key}
        )
        task_id = created.json()["id"]
        for _ in range(600):
            status = (await client.get(f"{server.url}/source/{task_id}")).json()
            if status["progress"] >= 5:
                break
            await asyncio.sleep(0.02)
        engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            task = await repo.get_task(conn, task_id)
    finally:
        await engine.dispose()
    assert task is not None and (task.status, task.progress) == (TaskStatus.QUEUED, 0)
