"""In-process pub/sub: one asyncio.Queue per listener. Snapshots of the task row, never a second truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from reelgate.tasks.models import Task


class LocalSubscription:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Task] = asyncio.Queue()

    def put(self, task: Task) -> None:
        self._queue.put_nowait(task)

    async def next(self, wait_seconds: float) -> Task | None:
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None


class LocalEventBus:
    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[LocalSubscription]] = defaultdict(set)

    def publish(self, task: Task) -> None:
        for listener in self._listeners.get(task.id, ()):
            listener.put(task)

    @asynccontextmanager
    async def subscribe(self, task_id: str) -> AsyncIterator[LocalSubscription]:
        subscription = LocalSubscription()
        self._listeners[task_id].add(subscription)
        try:
            yield subscription
        finally:
            self._listeners[task_id].discard(subscription)
            if not self._listeners[task_id]:
                del self._listeners[task_id]

    def watching(self, task_id: str) -> bool:
        """Whether anything in this process listens to the task."""
        return task_id in self._listeners

    @property
    def listener_count(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())
