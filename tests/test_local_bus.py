"""The in-process event bus: what a listener hears, in order, and when it hears nothing."""

import asyncio
from dataclasses import replace

import pytest

from reelgate.events.local import LocalEventBus
from reelgate.tasks.models import TaskStatus
from tests.render.test_chat_markdown import TASK

RUNNING = replace(TASK, status=TaskStatus.IN_PROGRESS, progress=40)


async def test_a_listener_hears_each_snapshot_in_order_and_none_after_a_silence() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id) as listener:
        assert await listener.next(0) is None  # nothing yet, and no wait asked
        assert await listener.next(0.05) is None  # nothing within the wait
        bus.publish(TASK)
        bus.publish(RUNNING)
        assert await listener.next(0) == TASK
        assert await listener.next(5) == RUNNING


async def test_a_waiting_listener_wakes_when_something_is_published() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id) as listener:
        waiting = asyncio.create_task(listener.next(30))
        await asyncio.sleep(0.01)
        bus.publish(RUNNING)
        assert await asyncio.wait_for(waiting, 5) == RUNNING


async def test_a_listener_cancelled_while_waiting_can_wait_again() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id) as listener:
        waiting = asyncio.create_task(listener.next(30))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        bus.publish(RUNNING)
        assert await listener.next(1) == RUNNING


async def test_a_failure_reaches_the_listener_as_its_exception() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id) as listener:
        bus.fail([TASK.id], ConnectionError("the database went away"))
        with pytest.raises(ConnectionError):
            await listener.next(1)


async def test_a_listener_starts_from_the_snapshot_published_here_else_from_its_own() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id, TASK) as first:
        assert await first.next(0) == TASK  # nothing published yet: the caller's snapshot
        bus.publish(RUNNING)
        async with bus.subscribe(TASK.id, TASK) as second:
            assert await second.next(0) == RUNNING  # the newer one this process already follows
    async with bus.subscribe(TASK.id) as third:
        assert await third.next(0) is None  # the last listener left: nothing is kept


async def test_a_refreshed_snapshot_is_published_only_when_it_changed() -> None:
    bus = LocalEventBus()
    async with bus.subscribe(TASK.id, TASK) as listener:
        assert await listener.next(0) == TASK
        bus.refreshed(replace(TASK))  # equal, another object: nothing new
        bus.refreshed(TASK)
        assert await listener.next(0) is None
        bus.refreshed(RUNNING)
        assert await listener.next(0) == RUNNING
