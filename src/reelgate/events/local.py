"""In-process pub/sub: one asyncio.Queue per listener. Snapshots of the task row, never a second truth.

The bus keeps the last snapshot of each task watched here, so that a stream joining a watched task
starts from it without reading the row; it is dropped with the task's last listener.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Iterable

from reelgate.tasks.models import Task


class LocalSubscription:
    """What was published for one listener, in order, and the one wait for more. Lighter than an
    `asyncio.Queue` (a deque and a future, no timeout scope): a process holds one per open stream."""

    def __init__(self) -> None:
        self._items: deque[Task | Exception] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Task | Exception) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, wait_seconds: float) -> Task | None:
        """The next snapshot, or None after `wait_seconds` of silence; raises what `fail` delivered."""
        if not self._items and wait_seconds > 0:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(wait_seconds, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, Exception):
            raise item
        return item


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Listening:
    """`LocalEventBus.subscribe(...)`: a subscription, listed while the `async with` block runs.

    A plain object rather than an `asynccontextmanager`: a process holds one per open stream, and a
    generator-based one keeps a generator, its frame and a wrapper alive for the collector to go through.
    """

    __slots__ = ("_bus", "_current", "_subscription", "_task_id")

    def __init__(self, bus: LocalEventBus, task_id: str, current: Task | None) -> None:
        self._bus, self._task_id, self._current = bus, task_id, current
        self._subscription: LocalSubscription | None = None

    async def __aenter__(self) -> LocalSubscription:
        self._subscription = self._bus._add(self._task_id, self._current)
        return self._subscription

    async def __aexit__(self, *exc_info: object) -> None:
        if self._subscription is not None:
            self._bus._remove(self._task_id, self._subscription)


class LocalEventBus:
    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[LocalSubscription]] = defaultdict(set)
        self._latest: dict[str, Task] = {}

    def publish(self, task: Task) -> None:
        listeners = self._listeners.get(task.id)
        if not listeners:
            return
        self._latest[task.id] = task
        for listener in listeners:
            listener.put(task)

    def refreshed(self, task: Task) -> None:
        """Publish a snapshot read from the row only if it differs from the last one published."""
        latest = self._latest.get(task.id)
        if latest is task:  # the row reader's task of an unchanged row (`tasks/watchers.py`)
            return
        if latest == task:
            self._latest[task.id] = task  # so that the reader's next poll of the same row stops at `is`
        else:
            self.publish(task)

    def fail(self, task_ids: Iterable[str], error: Exception) -> None:
        """Tell every listener of these tasks that they cannot be followed any further."""
        for task_id in task_ids:
            for listener in self._listeners.get(task_id, ()):
                listener.put(error)

    def subscribe(self, task_id: str, current: Task | None = None) -> Listening:
        """Listen to the task while the block runs (`async with`), starting from the last snapshot published
        here, else from `current` (the row as the caller read it), if given."""
        return Listening(self, task_id, current)

    def _add(self, task_id: str, current: Task | None) -> LocalSubscription:
        subscription = LocalSubscription()
        latest = self._latest.setdefault(task_id, current) if current is not None else self._latest.get(task_id)
        if latest is not None:
            subscription.put(latest)
        self._listeners[task_id].add(subscription)
        return subscription

    def _remove(self, task_id: str, subscription: LocalSubscription) -> None:
        self._listeners[task_id].discard(subscription)
        if not self._listeners[task_id]:
            del self._listeners[task_id]
            self._latest.pop(task_id, None)

    def watching(self, task_id: str) -> bool:
        """Whether anything in this process listens to the task."""
        return task_id in self._listeners

    def watched(self) -> list[str]:
        """The tasks something in this process listens to and that have not ended."""
        return [
            task_id
            for task_id in self._listeners
            if (latest := self._latest.get(task_id)) is None or not latest.status.is_final
        ]

    @property
    def listener_count(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())
